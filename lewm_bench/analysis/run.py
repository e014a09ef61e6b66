"""``lewm-bench analyze {voe,probe,diagnostics}``: run an analysis on a trained agent and write its tables.

Outputs in ``ROOT/analysis/ENV/AGENT-PROFILE-seedS/``: ``voe_surprise.csv`` (every trajectory,
variant and step), ``voe_tests.csv`` (paired t-tests at the perturbation step), ``voe.png``
(surprise over time); ``probe.csv`` (MSE and Pearson r per quantity and probe);
``diagnostics_open_loop.csv`` (prediction error per rollout step), ``diagnostics_plans.csv`` (the
executed plan's rank among the candidates per task), ``diagnostics.png``. One row per run is also
kept in ``ROOT/analysis/{voe,probe,diagnostics}.csv`` for the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd

from lewm_bench.analysis import diagnostics
from lewm_bench.analysis.config import ProbeConfig, VoEConfig
from lewm_bench.analysis.probe import probe
from lewm_bench.analysis.voe import plot_surprise, violation_of_expectation
from lewm_bench.errors import LewmBenchError
from lewm_bench.io import check_output_folder, upsert_csv, write_csv
from lewm_bench.locks import lock_output
from lewm_bench.paths import run_dir
from lewm_bench.profiles import Profile
from lewm_bench.provenance import default_device
from lewm_bench.registry import get_agent
from lewm_bench.training.checkpoint import load_world_model

AnalysisKind = Literal["voe", "probe", "diagnostics"]
KINDS: tuple[str, ...] = get_args(AnalysisKind)


class AnalysisSkipped(LewmBenchError):
    """The agent cannot be analysed (e.g. a policy without an encoder); the message says why."""


def skip_reason(kind: str, agent: str) -> str | None:
    """Why ``agent`` cannot be given analysis ``kind`` (None: it can); decided by the agent's kind alone."""
    info = get_agent(agent)
    if info.kind != "world_model":
        what = {"probe": "probe", "voe": "surprise", "diagnostics": "diagnose"}[kind]
        return f"agent {agent!r} is a {info.kind} without an encoder or predictor: nothing to {what}; skipped"
    if info.uses_proprio:
        return (f"agent {agent!r} embeds the proprioceptive state with the frames; the analyses replay frames only: "
                "skipped")
    return None


def analysis_dir(root: str | os.PathLike[str], env: str, agent: str, profile: Profile, seed: int) -> Path:
    """``ROOT/analysis/ENV/AGENT-PROFILE-seedS``: where one run's analyses are written."""
    return run_dir("analysis", env, agent, profile.name, seed, root)


def analyze(kind: AnalysisKind, env: str, agent: str, profile: Profile,
            checkpoint: str | os.PathLike[str] | None = None, root: str | os.PathLike[str] = "runs", seed: int = 0,
            voe: VoEConfig | None = None, probe_config: ProbeConfig | None = None,
            workers: int | None = None) -> pd.DataFrame:
    """Run one analysis with the profile's sizes (or ``voe`` / ``probe_config``); returns its table
    (t-tests for ``voe``, scores for ``probe``, the long summary for ``diagnostics``). The frameskip and
    dataset are the trained run's; diagnostics plan with the profile's CEM on the evaluation's tasks, simulating
    slow candidates in up to ``workers`` processes (default: :func:`~lewm_bench.analysis.diagnostics.plan_ranks`'s)."""
    voe, probe_config = voe or profile.voe, probe_config or profile.probe
    if kind not in KINDS:
        raise LewmBenchError(f"unknown analysis {kind!r}; valid: {', '.join(KINDS)}")
    reason = skip_reason(kind, agent)
    if reason is not None:
        raise AnalysisSkipped(reason)
    root = Path(root)
    out = analysis_dir(root, env, agent, profile, seed)
    check_output_folder(out, "--root")  # before the work
    with lock_output(out / kind):  # one writer per analysis (voe and probe write different files of the folder)
        return _analyze(kind, env, agent, profile, checkpoint, root, seed, voe, probe_config, out, workers)


def _analyze(kind: AnalysisKind, env: str, agent: str, profile: Profile, checkpoint: str | os.PathLike[str] | None,
             root: Path, seed: int, voe: VoEConfig, probe_config: ProbeConfig, out: Path,
             workers: int | None) -> pd.DataFrame:
    device = default_device()
    checkpoint = checkpoint or run_dir("train", env, agent, profile.name, seed, root)
    loaded = load_world_model(checkpoint, env, agent, device)
    loaded.run.check_frameskip(profile.frameskip, str(checkpoint))
    model, data_path = loaded.model, loaded.run.data.resolve(loaded.run_dir)
    keys = {"env": env, "agent": agent, "profile": profile.name, "seed": seed}
    if kind == "voe":
        table, tests = violation_of_expectation(model, env, data_path, loaded.run.frameskip, voe, device,
                                                cache_dir=root / "analysis" / env)  # one simulation per env
        write_csv(out / "voe_surprise.csv", table)
        write_csv(out / "voe_tests.csv", tests)
        plot_surprise(table, tests, f"{env} / {agent} ({profile.name}): surprise, {voe.trajectories} trajectories",
                      out / "voe.png")
        result = tests
    elif kind == "probe":
        result = probe(model, env, data_path, probe_config, device)
        write_csv(out / "probe.csv", result)
    else:
        result = _diagnose(loaded, env, data_path, profile, device, out, workers)
    table_path = root / "analysis" / f"{kind}.csv"
    with lock_output(table_path, wait_s=60):  # shared by every analysis under root: update in turn
        upsert_csv(table_path, result.assign(**keys), keys)
    return result


def _diagnose(loaded: Any, env: str, data_path: Path, profile: Profile, device: Any, out: Path,
              workers: int | None) -> pd.DataFrame:
    from lewm_bench.data.actions import ActionCodec
    from lewm_bench.evaluation.protocol import paper_protocol

    config, model = profile.diagnostics, loaded.model
    protocol = paper_protocol(profile.eval_episodes)  # the suite's evaluation tasks
    codec = ActionCodec.from_stats(*loaded.run.action_stats(), loaded.run.frameskip)
    open_loop = diagnostics.open_loop_error(model, env, data_path, loaded.run.frameskip, profile.cem.horizon, config,
                                            device)
    plans = diagnostics.plan_ranks(model, env, data_path, codec, profile.cem, protocol, config, device, workers)
    write_csv(out / "diagnostics_open_loop.csv", open_loop)
    write_csv(out / "diagnostics_plans.csv", plans)
    diagnostics.plot_diagnostics(open_loop, plans, f"{env} / {loaded.run.agent} ({profile.name}): diagnostics",
                                 out / "diagnostics.png")
    return diagnostics.summarise(open_loop, plans)
