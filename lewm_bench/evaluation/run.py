"""``lewm-bench eval``: evaluate an agent on the paper's protocol and write every metric.

Outputs in the run folder (``runs/eval/ENV/AGENT-PROFILE-seedS/`` by default): ``result.json``
(every figure and setting), ``episodes.csv`` (one row per episode), ``episodes.gif`` (a few
episodes, observation beside goal), and one row in ``<root>/summary.csv`` (SPEC §11 columns).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lewm_bench.bench.common import git_commit
from lewm_bench.data.clips import ClipDataset
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.mpc import ActionCodec, EpisodeRecord, context_window, episode_seed, run_mpc
from lewm_bench.evaluation.protocol import PROTOCOLS, Protocol, sample_tasks, wilson_interval
from lewm_bench.io import upsert_csv, write_csv, write_json
from lewm_bench.models.layers import count_parameters
from lewm_bench.planning.cem import CEM, CEMConfig
from lewm_bench.planning.gradient import GradientConfig, GradientPlanner
from lewm_bench.profiles import Profile
from lewm_bench.registry import config_from_dict, get_agent
from lewm_bench.training.checkpoint import load_checkpoint, load_state_checked
from lewm_bench.training.trainer import default_data_path, default_run_dir, heldout_metrics

SUMMARY_COLUMNS = ["env", "agent", "profile", "seed", "episodes", "success_rate", "success_ci_low", "success_ci_high",
                   "plan_time_median_s", "plan_time_p90_s", "plan_calls", "tokens_per_frame",
                   "encoder_tokens_per_frame", "straightness", "params_trainable", "params_frozen", "train_time_s",
                   "eval_time_s", "device", "commit", "protocol", "split", "context", "planner",
                   "plan_time_batched_median_s", "predictor_tokens_per_call", "encoder"]


@dataclass(frozen=True)
class EvalResult:
    run_dir: Path
    record: dict[str, Any]


def load_world_model(checkpoint: str | os.PathLike[str], env: str, agent: str | None = None,
                     device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """A trained world model (any registered agent) in eval mode, and its checkpoint dict.

    ``agent``: when given, the checkpoint must belong to it.
    """
    ckpt = load_checkpoint(checkpoint, agent, env)
    cfg = ckpt["config"]
    cls = get_agent(ckpt["agent"]).cls
    model_cfg = config_from_dict(cls.config_class, cfg["model"] if "model" in cfg else cfg["lewm"])  # "lewm": v0.1 runs
    model = cls(model_cfg, cfg["data"]["image_size"], cfg["data"]["action_dim"])
    load_state_checked(model, ckpt["model"], str(checkpoint))
    return model.to(device).eval(), ckpt


def predictor_tokens_per_call(cem: CEMConfig, context: int, history: int, tokens_per_frame: int) -> int:
    """Tokens through the predictor in one CEM call: every candidate, iteration and rollout step."""
    window = sum(min(context + k, history) for k in range(cem.horizon))
    return cem.candidates * cem.iterations * window * tokens_per_frame


def evaluate(env: str, agent: str, profile: Profile, checkpoint: str | os.PathLike[str] | None = None,
             data: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None, seed: int = 0,
             protocol: Protocol = PROTOCOLS["paper"], context: int = 1, cem: CEMConfig | None = None,
             receding_horizon: int = 5, timing_calls: int = 20, planner_name: str = "cem",
             warmup_calls: int = 3, gif_episodes: int = 4,
             root: str | os.PathLike[str] = "runs", batch: int | None = None) -> EvalResult:
    """Evaluate ``agent`` on ``env`` (see the module docstring); returns the run folder and the record."""
    info = get_agent(agent)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cem = cem or profile.cem
    start_time = time.perf_counter()
    model, ckpt, train_time = None, None, None
    if info.kind == "world_model":
        checkpoint = checkpoint or default_run_dir(env, agent, profile, seed, Path(root) / "train")
        model, ckpt = load_world_model(checkpoint, env, agent, device)
        summary_file = Path(checkpoint) / "summary.json" if Path(checkpoint).is_dir() else None
        if summary_file is not None and summary_file.exists():
            train_time = json.loads(summary_file.read_text())["train_time_s"]
        if not 1 <= context <= model.history:
            raise ValueError(f"context must be between 1 and the model's history {model.history}; got {context}")
    data_path = Path(data) if data else Path(ckpt["config"]["data"]["path"]) if ckpt else default_data_path(
        env, profile, Path(root) / "data")
    with open_dataset(data_path, env) as ds:
        tasks = sample_tasks(ds, protocol)
        meta = ds.meta
        codec = ActionCodec.from_dataset(ds, profile.frameskip)
    if ckpt is not None and ckpt["config"]["data"]["image_size"] != meta.image_size:
        raise LewmBenchError(f"{data_path} has {meta.image_size} px frames; the checkpoint expects "
                             f"{ckpt['config']['data']['image_size']} px")
    env_kwargs = dict(meta.env_kwargs)
    if planner_name not in ("cem", "adam"):
        raise ValueError(f"unknown planner {planner_name!r}; valid planners: cem, adam")
    planner = None
    if model is not None:  # Adam gets the same horizon and optimisation steps as CEM's iterations
        planner = CEM(cem) if planner_name == "cem" else GradientPlanner(
            GradientConfig(iterations=cem.iterations, horizon=cem.horizon))
    run_dir = Path(out) if out else default_run_dir(env, agent, profile, seed, Path(root) / "eval")
    run_dir.mkdir(parents=True, exist_ok=True)

    records: list[EpisodeRecord] = []
    batched_times: list[float] = []
    aux_env = make_env(env, **env_kwargs)  # one env for the timed one-episode calls and the GIF's goal frames
    batch = batch or min(len(tasks), aux_env.max_parallel or len(tasks))
    if planner is not None:  # warm-up, not counted
        _time_single_calls(model, planner, aux_env, tasks, codec, context, device, warmup_calls, 0)
    for lo in range(0, len(tasks), batch):
        chunk = tasks[lo:lo + batch]
        envs = [make_env(env, **env_kwargs) for _ in chunk]
        policies = None if model is not None else [info.cls(envs[0].action_dim, episode_seed(seed, t)) for t in chunk]
        try:
            records += run_mpc(envs, chunk, protocol, model, planner, codec, context, receding_horizon, device,
                               policies=policies, seed=seed, keep_frames=gif_episodes if lo == 0 else 0,
                               plan_times=batched_times)
        finally:
            for e in envs:
                e.close()
    single_times = [] if planner is None else _time_single_calls(
        model, planner, aux_env, tasks, codec, context, device, 0, timing_calls)
    eval_time = time.perf_counter() - start_time
    gif_goals = [aux_env.render_state(t.goal_state) for t in tasks[:gif_episodes]]
    aux_env.close()

    successes = sum(r.success for r in records)
    low, high = wilson_interval(successes, len(records))
    straight = None
    if model is not None:
        held = ClipDataset(data_path, "held_out", max(model.history, 2), profile.frameskip, env=env)
        idx = torch.randperm(len(held), generator=torch.Generator().manual_seed(0))[:512]
        straight = heldout_metrics(model, held, idx, device)["straightness"]
    record = {
        "env": env, "agent": agent, "profile": profile.name, "seed": seed, "episodes": len(records),
        "success_rate": successes / len(records), "success_ci_low": low, "success_ci_high": high,
        "plan_time_median_s": _pct(single_times, 50), "plan_time_p10_s": _pct(single_times, 10),
        "plan_time_p90_s": _pct(single_times, 90), "plan_calls": len(single_times),
        "plan_time_batched_median_s": _pct(batched_times, 50), "plan_time_batched_p10_s": _pct(batched_times, 10),
        "plan_time_batched_p90_s": _pct(batched_times, 90), "plan_calls_batched": len(batched_times),
        "batched_episodes_per_call": batch,
        "tokens_per_frame": model.tokens_per_frame if model else None,
        "encoder_tokens_per_frame": model.encoder_tokens_per_frame if model else None,
        "predictor_tokens_per_call": predictor_tokens_per_call(cem, context, model.history,
                                                               model.tokens_per_frame) if model else None,
        "straightness": straight, "encoder": getattr(model, "encoder_kind", None),
        "params_trainable": count_parameters(model, True) if model else 0,
        "params_frozen": count_parameters(model, False) if model else 0,
        "train_time_s": train_time, "eval_time_s": eval_time, "device": _device_name(device), "commit": git_commit(),
        "protocol": protocol.name, "goal_offset": protocol.goal_offset, "budget": protocol.budget,
        "split": protocol.split, "context": context if model else None,
        "planner": (f"cem {cem.candidates}x{cem.iterations} top{cem.elites} h{cem.horizon}" if planner_name == "cem"
                    else f"adam {cem.iterations} steps lr {GradientConfig.lr} h{cem.horizon}") if model else None,
        "receding_horizon": receding_horizon, "dataset": str(data_path), "env_kwargs": env_kwargs,
        "checkpoint": str(checkpoint) if checkpoint else None,
    }
    write_csv(run_dir / "episodes.csv",
              pd.DataFrame([{k: v for k, v in dataclasses.asdict(r).items() if k != "frames"} for r in records]))
    write_json(run_dir / "result.json", record)
    _append_summary(Path(root) / "summary.csv", record)
    _write_gif(run_dir / "episodes.gif", records, gif_goals)
    return EvalResult(run_dir, record)


def _time_single_calls(model, planner, env, tasks, codec, context, device, warmup, calls) -> list[float]:
    """Planning time of one episode at a time (the paper's setting), on the tasks' start states."""
    times = []
    for k in range(warmup + calls):
        task = tasks[k % len(tasks)]
        obs, _ = env.reset(options={"state": task.start_state})
        ctx, past = context_window([obs], [], context, codec)
        goal = env.render_state(task.goal_state).transpose(2, 0, 1)
        res = planner.solve(model, torch.from_numpy(ctx[None]).to(device), torch.from_numpy(past[None]).to(device),
                            torch.from_numpy(goal[None]).to(device), seeds=[k])
        if k >= warmup:
            times.append(res.seconds)
    return times


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def _append_summary(path: Path, record: dict[str, Any]) -> None:
    """Add (or replace) this run's row in summary.csv, atomically."""
    upsert_csv(path, pd.DataFrame([{c: record.get(c) for c in SUMMARY_COLUMNS}]),
               {k: record[k] for k in ("env", "agent", "profile", "seed")})


def _write_gif(path: Path, records: list[EpisodeRecord], goals: list[np.ndarray]) -> None:
    """Observation beside goal for the episodes whose frames were kept (the first ones, whose goal frames are
    ``goals``); a green border on success."""
    from PIL import Image

    shown = [(r, goal) for r, goal in zip(records, goals) if r.frames]
    if not shown:
        return
    length = max(len(r.frames) for r, _ in shown)
    frames = []
    for k in range(length):
        rows = []
        for r, goal in shown:
            obs = r.frames[min(k, len(r.frames) - 1)].copy()
            if r.success and k >= len(r.frames) - 1:
                obs[:2], obs[-2:], obs[:, :2], obs[:, -2:] = (0, 200, 0), (0, 200, 0), (0, 200, 0), (0, 200, 0)
            rows.append(np.concatenate([obs, np.full((obs.shape[0], 2, 3), 255, np.uint8), goal], 1))
        grid = np.concatenate([np.pad(r, ((1, 1), (0, 0), (0, 0)), constant_values=255) for r in rows], 0)
        scale = max(1, 400 // grid.shape[1])
        frames.append(Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST))
    tmp = path.with_name(path.name + ".tmp")
    frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    os.replace(tmp, path)
