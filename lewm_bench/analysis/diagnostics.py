"""Model diagnostics: why a world model's plans fail (issue 17).

Two measurements on a trained world model, both on held-out data:

- **Open-loop error over the planning horizon.** From clips of the held-out episodes, the model
  sees its training history of frames and rolls out the clip's true action blocks for ``horizon``
  steps; each predicted embedding is compared with the encoder's embedding of the real frame. The
  error is reported per step as a mean squared error and relative to the mean squared distance
  between embeddings of two random held-out frames (1.0: no better than a random frame), beside
  the *persistence* baseline that predicts the last seen embedding (no motion at all). A model whose
  error is not below persistence has not learnt the dynamics its planner relies on.
- **Rank of the executed plan.** On evaluation tasks (the protocol's held-out start/goal pairs),
  one CEM call plans from the start; every candidate of its last iteration and the plan it returns
  are rolled out in the true simulator from the start state, and scored by how far each ends from
  passing the success test for the goal state (``GoalEnv.goal_cost``: the test's distance, on PushT
  with the block angle too; before ac8167b PushT's was the position error alone). Reported per task:
  the fraction of candidates the simulator scores better than the returned plan (0: the model chose
  the best the planner had; 0.5: no better than a random candidate) and the Spearman correlation
  between the model's costs and the simulator's over the candidates (1: the model ranks plans as the
  world does). A failure with a good rank is the planner's or the horizon's (no candidate was good);
  a bad rank is the model's.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch

from lewm_bench.analysis.config import DiagnosticsConfig
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.clips import ClipDataset
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env
from lewm_bench.evaluation.protocol import Protocol, sample_tasks
from lewm_bench.planning.cem import CEM, CEMConfig

OPEN_LOOP_COLUMNS = ["step", "mse", "relative", "persistence_mse", "persistence_relative", "clips"]
PLAN_COLUMNS = ["task", "episode", "start", "goal", "candidates", "executed_distance", "best_candidate_distance",
                "rank_fraction", "spearman"]
POOL_AFTER_SECONDS = 2.0
"""When the first task's candidates take longer than this to simulate (Cube's MuJoCo: about 5 s for 300 candidates x
25 steps, against 0.02 s on Two-Room), the other tasks' candidates are simulated by worker processes, one simulator
each, split evenly between them: the same distances, since each simulation starts from a set state."""
MAX_SIMULATORS = 4
"""At most this many pool workers by default (a Cube simulator holds about 340 MB)."""


@torch.no_grad()
def open_loop_error(model: Any, env: str, data_path: str | os.PathLike[str], frameskip: int, horizon: int,
                    config: DiagnosticsConfig, device: torch.device | str = "cpu") -> pd.DataFrame:
    """Open-loop prediction error per rollout step (1..``horizon``) on held-out clips; see the module docstring."""
    model.eval()
    h = model.history
    clips = ClipDataset(data_path, "held_out", h + horizon - 1, frameskip, env=env)
    rng = np.random.default_rng(config.seed)
    picks = rng.choice(len(clips), min(config.clips, len(clips)), replace=False)
    sq, persist, spread, n = torch.zeros(horizon), torch.zeros(horizon), 0.0, 0
    for i in range(0, len(picks), config.batch):
        batch = [clips[int(j)] for j in picks[i:i + config.batch]]
        frames = torch.stack([c.frames for c in batch]).to(device)  # (B, h + H, 3, H, W)
        actions = torch.stack([c.actions for c in batch]).to(device)  # (B, h - 1 + H, A)
        z = model.encode(frames).float()  # (B, h + H, ...)
        pred = model.rollout(z[:, :h], actions).float()  # (B, H, ...)
        real = z[:, h:]
        sq += (pred - real).pow(2).flatten(2).mean(-1).sum(0).cpu()
        persist += (z[:, h - 1:h] - real).pow(2).flatten(2).mean(-1).sum(0).cpu()
        shuffled = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(config.seed + i))]
        spread += float((real - shuffled).pow(2).flatten(2).mean(-1).sum())  # random pairs (0 if a clip meets itself)
        n += len(batch)
    scale = spread / max(n * horizon, 1)
    mse, pmse = (sq / n).numpy(), (persist / n).numpy()
    return pd.DataFrame({"step": np.arange(1, horizon + 1), "mse": mse, "relative": mse / scale,
                         "persistence_mse": pmse, "persistence_relative": pmse / scale, "clips": n},
                        columns=OPEN_LOOP_COLUMNS)


def plan_ranks(model: Any, env: str, data_path: str | os.PathLike[str], codec: ActionCodec, cem: CEMConfig,
               protocol: Protocol, config: DiagnosticsConfig, device: torch.device | str = "cpu",
               workers: int | None = None) -> pd.DataFrame:
    """Per task: how the simulator ranks the plan one CEM call returns among that call's final candidates.

    ``workers``: processes that simulate the candidates when that is slow (:data:`POOL_AFTER_SECONDS`); default the
    machine's CPUs, at most :data:`MAX_SIMULATORS`."""
    with open_dataset(data_path, env) as ds:
        tasks = sample_tasks(ds, protocol)[:config.tasks]
        env_kwargs = dict(ds.meta.env_kwargs)
    workers = workers or min(os.cpu_count() or 1, MAX_SIMULATORS)
    sim = make_env(env, **env_kwargs)
    planner = CEM(cem)
    planner.keep_candidates = True
    rows = []
    pool: ProcessPoolExecutor | None = None
    try:
        for k, task in enumerate(tasks):
            obs, _ = sim.reset(options={"state": task.start_state, "goal_state": task.goal_state})
            start = torch.from_numpy(obs).permute(2, 0, 1)[None, None].to(device)
            goal = torch.from_numpy(sim.render_state(task.goal_state)).permute(2, 0, 1)[None].to(device)
            past = torch.zeros(1, 0, codec.block_dim, device=device)  # one context frame
            plan = planner.solve(model, start, past, goal, seeds=[config.seed + k]).actions[0].float().cpu().numpy()
            candidates, model_cost = (t[0].float().cpu().numpy() for t in planner.last_candidates)
            if pool is None:
                start_time = time.perf_counter()
                true = np.array([_true_distance(sim, codec, c, task) for c in candidates])
                if workers > 1 and time.perf_counter() - start_time > POOL_AFTER_SECONDS:
                    # spawn, not fork: MuJoCo's GL context and pygame do not survive a fork
                    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                               initializer=_init_simulator, initargs=(env, env_kwargs, os.getpid()))
            else:
                parts = pool.map(_pool_distances, [(codec, part, task) for part in np.array_split(candidates, workers)])
                true = np.concatenate(list(parts))
            executed = _true_distance(sim, codec, plan, task)
            spearman = _spearman(model_cost, true)
            rows.append({"task": k, "episode": task.episode, "start": task.start, "goal": task.goal,
                         "candidates": len(true), "executed_distance": executed,
                         "best_candidate_distance": float(true.min()), "rank_fraction": float(np.mean(true < executed)),
                         "spearman": float(spearman)})
    finally:
        sim.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


_simulator: dict[str, Any] = {}
"""A pool worker's own simulator (:func:`_init_simulator`)."""


def _init_simulator(env: str, env_kwargs: dict[str, Any], parent: int) -> None:
    from lewm_bench.collect.runner import die_with_parent

    die_with_parent(parent)
    torch.set_num_threads(1)
    _simulator["sim"] = make_env(env, **env_kwargs)


def _pool_distances(args: tuple[ActionCodec, np.ndarray, Any]) -> np.ndarray:
    codec, candidates, task = args
    return np.array([_true_distance(_simulator["sim"], codec, c, task) for c in candidates])


def _true_distance(sim: Any, codec: ActionCodec, blocks: np.ndarray, task: Any) -> float:
    """How far from passing the success test (:meth:`GoalEnv.goal_cost`) the state is after executing ``blocks``
    (H, block) from the task's start."""
    return float(sim.goal_cost(sim.simulate(task.start_state, codec.to_env(blocks)), task.goal_state))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def summarise(open_loop: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """One long table (quantity, step, value) for the report: open-loop errors per step and the plan-rank medians."""
    rows = [{"quantity": q, "step": int(r.step), "value": float(getattr(r, q))}
            for r in open_loop.itertuples() for q in ("relative", "persistence_relative")]
    rows += [{"quantity": "rank_fraction_median", "step": 0, "value": float(plans.rank_fraction.median())},
             {"quantity": "spearman_mean", "step": 0, "value": float(plans.spearman.mean())},
             {"quantity": "tasks", "step": 0, "value": float(len(plans))}]
    return pd.DataFrame(rows)


def plot_diagnostics(open_loop: pd.DataFrame, plans: pd.DataFrame, title: str, path: str | os.PathLike[str]) -> None:
    """Open-loop error per step against persistence, and the executed plans' rank fractions."""
    from matplotlib.figure import Figure

    from lewm_bench.io import save_figure

    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    left.plot(open_loop.step, open_loop.relative, "o-", label="world model (open loop)")
    left.plot(open_loop.step, open_loop.persistence_relative, "s--", color="grey", label="persistence (no motion)")
    left.axhline(1.0, color="k", lw=0.5, ls=":")
    left.set_yscale("log")
    left.set_xticks(list(open_loop.step))
    left.set_xlabel("rollout step (action blocks)")
    left.set_ylabel("MSE / random-pair MSE")
    left.set_title("prediction error on held-out clips", fontsize=9)
    left.legend(fontsize=8)
    right.hist(plans.rank_fraction, bins=np.linspace(0, 1, 11), color="tab:blue", edgecolor="white")
    right.set_xlabel("fraction of candidates the simulator prefers")
    right.set_ylabel("tasks")
    right.set_title(f"executed plan's rank (Spearman {plans.spearman.mean():.2f})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
