"""Per-task comparisons of evaluations that asked the same start/goal pairs.

Every evaluation folder (``ROOT/eval/ENV/RUN``) holds ``result.json`` and ``episodes.csv``, one row per
task: the held-out episode, start and goal steps, and whether the agent reached the goal. Two
evaluations asked the same tasks when these (episode, start, goal) triples are equal — which holds
whenever the tasks were cut from the same dataset with the same protocol, whatever the agent.
On these tasks this module answers two questions of the report:

- :func:`oracle_table` — which tasks the oracle (CEM over the true simulator, the ceiling a planner of
  the protocol's size can reach) fails, and how every agent does on the tasks it solves and on those
  it fails (a task the oracle fails is not a test of the world model);
- :func:`training_data_table` — the same agent trained on different datasets (expert, pusher, random
  data...) and evaluated on the same tasks, beside the oracle: the data-quality comparison.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lewm_bench.evaluation.protocol import wilson_interval

ORACLE = "oracle"
"""The agent name of the simulator-planning ceiling (``baselines/oracle.py``)."""
_TASK = ["episode", "start", "goal"]


@dataclass(frozen=True)
class Evaluation:
    """One finished evaluation: its ``result.json`` and the per-task outcomes of its ``episodes.csv``."""

    result: dict[str, Any]
    outcomes: pd.Series
    """Success (bool) per task, indexed by (episode, start, goal)."""

    @property
    def tasks(self) -> frozenset[tuple[int, int, int]]:
        return frozenset(self.outcomes.index)


def load_evaluations(root: str | os.PathLike[str]) -> list[Evaluation]:
    """Every evaluation under ``ROOT/eval`` with a readable ``result.json`` and ``episodes.csv``, in path order."""
    evaluations = []
    for path in sorted(Path(root).glob("eval/*/*/result.json")):
        episodes = path.with_name("episodes.csv")
        try:
            result = json.loads(path.read_text())
            table = pd.read_csv(episodes)
        except (OSError, ValueError):  # an unreadable or unfinished folder is not a result
            continue
        if not set(_TASK + ["success"]) <= set(table.columns) or table.empty:
            continue
        outcomes = table.set_index(_TASK).success.astype(bool)
        evaluations.append(Evaluation(result, outcomes))
    return evaluations


def _rate(successes: int, n: int) -> str:
    if n == 0:
        return "—"
    low, high = wilson_interval(successes, n)
    return f"{successes}/{n} ({100 * successes / n:.0f}%) [{100 * low:.0f}, {100 * high:.0f}]"


def _same_tasks(evaluations: list[Evaluation], reference: Evaluation) -> list[Evaluation]:
    return [e for e in evaluations if e.result["env"] == reference.result["env"]
            and e.result["profile"] == reference.result["profile"] and e.tasks == reference.tasks]


def oracle_table(evaluations: list[Evaluation]) -> pd.DataFrame:
    """Per oracle evaluation (its planner named: one per CEM budget), one row per evaluation of the same tasks:
    success on all of them, on the ones the oracle solves and on the ones it fails (counts, percent and Wilson 95%
    intervals)."""
    rows = []
    for oracle in (e for e in evaluations if e.result["agent"] == ORACLE):
        solved = oracle.outcomes
        for e in _same_tasks(evaluations, oracle):
            outcome = e.outcomes.reindex(solved.index)
            rows.append({"profile": e.result["profile"], "env": e.result["env"], "agent": e.result["agent"],
                         "seed": e.result["seed"], "variant": e.result.get("variant", ""),
                         "oracle's planner": oracle.result.get("planner") or "—",
                         "oracle fails": f"{int((~solved).sum())} of {len(solved)} tasks",
                         "success (all tasks)": _rate(int(outcome.sum()), len(outcome)),
                         "on tasks the oracle solves": _rate(int(outcome[solved].sum()), int(solved.sum())),
                         "on tasks the oracle fails": _rate(int(outcome[~solved].sum()), int((~solved).sum()))})
    return pd.DataFrame(rows)


def training_data_table(evaluations: list[Evaluation]) -> pd.DataFrame:
    """Agents evaluated on the same tasks after training on different datasets (their ``train_data``), one row per
    evaluation, with the oracle on the same tasks where it was evaluated; empty when no agent was."""
    groups: dict[tuple[Any, ...], list[Evaluation]] = {}
    for e in evaluations:
        if e.result.get("train_data"):
            groups.setdefault((e.result["agent"], e.result["env"], e.result["profile"], e.tasks), []).append(e)
    rows = []
    for group in groups.values():
        if len({e.result["train_data"] for e in group}) < 2:
            continue
        oracles = [o for o in _same_tasks(evaluations, group[0]) if o.result["agent"] == ORACLE]
        oracle = "; ".join(_rate(int(o.outcomes.sum()), len(o.outcomes)) for o in oracles) or "—"
        for e in group:
            r = e.result
            collector, identity = r["train_data"].split(":", 1)
            rows.append({"profile": r["profile"], "env": r["env"], "agent": r["agent"], "seed": r["seed"],
                         "trained on": f"{collector} data ({identity[:8]})",
                         "tasks from": (r.get("tasks_data") or "—").split(":", 1)[0] + " data",
                         "success": _rate(int(e.outcomes.sum()), len(e.outcomes)), "oracle on the same tasks": oracle})
    return pd.DataFrame(rows)
