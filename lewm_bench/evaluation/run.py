"""``lewm-bench eval``: evaluate an agent on the paper's protocol and write every metric.

Outputs in the run folder (``runs/eval/ENV/AGENT-PROFILE-seedS/`` by default): ``result.json``
(every figure and setting: an :class:`EvalRecord`), ``episodes.csv`` (one row per episode),
``episodes.gif`` (a few episodes, observation beside goal), and one row in ``<root>/summary.csv``
(SPEC §11 columns, keyed by env, agent, profile, seed and the evaluation's ``config_id``, so an
evaluation with other settings adds a row instead of replacing one).

A world model plans with CEM; a policy (trained by ``lewm-bench train`` or not) acts without a
planner. The ``plan_time_*`` columns hold the time of what the agent does per call: one planning call
(world models) or one decision, ``act`` (policies); the ``timed_call`` column says which.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.clips import ClipDataset
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import GoalEnv, env_spec, make_env
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.mpc import EpisodeRecord, context_window, episode_seed, policy_act, run_mpc
from lewm_bench.evaluation.protocol import PROTOCOLS, Protocol, Task, sample_tasks, wilson_interval
from lewm_bench.identity import content_hash
from lewm_bench.io import atomic_path, check_output_folder, upsert_csv, write_csv, write_json
from lewm_bench.locks import lock_output
from lewm_bench.loggers import check_logger, make_logger
from lewm_bench.models.layers import count_parameters
from lewm_bench.paths import data_root, run_dir, run_name, summary_path
from lewm_bench.planning import CEM, Planner, describe, make_planner
from lewm_bench.planning.cem import CEMConfig
from lewm_bench.profiles import Profile, get_profile
from lewm_bench.protocols import uses_proprio
from lewm_bench.provenance import default_device, device_name, git_commit
from lewm_bench.registry import AgentInfo, get_agent
from lewm_bench.training.checkpoint import LoadedModel, load_world_model
from lewm_bench.training.trainer import heldout_metrics


@dataclass(frozen=True)
class EvalRecord:
    """Every figure and setting of one evaluation (``result.json``); the first fields are ``summary.csv``'s columns."""

    env: str
    agent: str
    profile: str
    seed: int
    episodes: int
    success_rate: float
    success_ci_low: float
    success_ci_high: float
    plan_time_median_s: float | None
    plan_time_p90_s: float | None
    plan_calls: int
    tokens_per_frame: int | None
    encoder_tokens_per_frame: int | None
    straightness: float | None
    params_trainable: int
    params_frozen: int
    train_time_s: float | None
    eval_time_s: float
    device: str
    commit: str
    protocol: str
    split: str
    context: int | None
    planner: str | None
    plan_time_batched_median_s: float | None
    predictor_tokens_per_call: int | None
    encoder: str | None
    timed_call: str
    """What ``plan_time_*`` measure: ``planning call`` (a world model's CEM solve) or ``decision`` (one ``act`` of a
    policy)."""
    train_data: str | None
    """``COLLECTOR:IDENTITY`` of the dataset the agent was trained on (None for an agent trained on none)."""
    tasks_data: str
    """``COLLECTOR:IDENTITY`` of the dataset the start/goal pairs were cut from."""
    config_id: str
    """Hash of everything that changes the result (protocol, planner, context, receding horizon, the trained
    run's identity or the policy, the tasks' dataset when it is not the default one); rows of ``summary.csv`` are
    keyed by it beside env, agent, profile and seed."""
    variant: str
    """The evaluation settings in words (protocol, split, episodes, planner; the training and task data when they are
    not the profile's), to tell rows of two configs apart."""
    plan_time_p10_s: float | None = None
    plan_time_batched_p10_s: float | None = None
    plan_time_batched_p90_s: float | None = None
    plan_calls_batched: int = 0
    batched_episodes_per_call: int = 0
    goal_offset: int = 0
    budget: int = 0
    receding_horizon: int = 0
    frameskip: int = 0
    dataset: str = ""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    inputs: str = "pixels"
    """What the agent acted on: ``pixels`` (every reward-free agent), or ``privileged state`` (``+ reward`` when it
    learned from the env's reward, e.g. ``sac-her``)."""
    online_env_steps: int | None = None
    """Env steps the agent trained on online (``sac-her``); None for agents that learned from the dataset alone."""
    precision: str | None = None
    """A planner's forward passes: ``bf16`` autocast or ``fp32`` (bf16 only where the device has fast bf16 kernels)."""


_FIELDS = [f.name for f in dataclasses.fields(EvalRecord)]
SUMMARY_COLUMNS = _FIELDS[:_FIELDS.index("variant") + 1]
"""Columns of ``summary.csv`` (SPEC §11's, then ``config_id`` and ``variant``)."""
SUMMARY_KEYS = ("env", "agent", "profile", "seed", "config_id")


@dataclass(frozen=True)
class EvalResult:
    run_dir: Path
    record: EvalRecord


def predictor_tokens_per_call(cem: CEMConfig, context: int, history: int, tokens_per_frame: int) -> int:
    """Tokens through the predictor in one CEM call: every candidate, iteration and rollout step."""
    window = sum(min(context + k, history) for k in range(cem.horizon))
    return cem.candidates * cem.iterations * window * tokens_per_frame


@dataclass
class _Setting:
    """What one evaluation runs: the agent (a loaded model or a policy class), its tasks and settings."""

    info: AgentInfo
    loaded: LoadedModel | None
    planner: Planner | None
    tasks: list[Task]
    codec: ActionCodec
    data_path: Path
    env_kwargs: dict[str, Any]
    device: torch.device
    policy: Any = None
    """A policy loaded from a file the user gave (``from_file``, e.g. ``sb3``): one instance for every episode."""
    tasks_data: str = ""
    """``COLLECTOR:IDENTITY`` of the dataset the tasks were cut from."""
    other_tasks: str | None = None
    """The identity of that dataset when it is not the default one (the agent's training data, else the profile's):
    part of the evaluation's identity then."""
    data_words: str = ""
    """The training and task data in the variant's words, where they are not the profile's kind."""
    env_name: str = ""
    cem: CEMConfig | None = None
    receding_horizon: int = 5

    @property
    def world_model(self) -> torch.nn.Module | None:
        """The trained world model (None for a policy)."""
        return self.loaded.model if self.loaded is not None and self.info.kind == "world_model" else None

    def policies(self, action_dim: int, seeds: list[int]) -> list[Any]:
        """One policy per episode: the trained one (stateless) for every episode, or a fresh untrained one each."""
        if self.loaded is not None:
            return [self.loaded.model] * len(seeds)
        if self.policy is not None:
            return [self.policy] * len(seeds)
        if self.info.plans_in_simulator:  # e.g. the oracle: the protocol's planner over a copy of the simulator
            return [self.info.cls(self.env_name, self.env_kwargs, self.codec, self.cem, self.receding_horizon, s)
                    for s in seeds]
        return [self.info.cls(action_dim, s) for s in seeds]


def evaluate(env: str, agent: str, profile: Profile, checkpoint: str | os.PathLike[str] | None = None,
             data: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None, seed: int = 0,
             protocol: Protocol = PROTOCOLS["paper"], context: int = 1, cem: CEMConfig | None = None,
             receding_horizon: int = 5, timing_calls: int | None = None, planner_name: str = "cem",
             warmup_calls: int | None = None, gif_episodes: int | None = None,
             root: str | os.PathLike[str] = "runs", batch: int | None = None, logger: str = "csv") -> EvalResult:
    """Evaluate ``agent`` on ``env`` (see the module docstring); returns the run folder and the record.

    ``logger`` (``tensorboard``, ``wandb``) also mirrors the ``summary.csv`` row to a tracker in the run folder.

    A world model is evaluated with the frameskip and action statistics of its run; asking for a
    profile whose frameskip differs is an error.
    """
    start_time = time.perf_counter()
    check_logger(logger)
    cem = cem or profile.cem
    timing_calls = profile.timing_calls if timing_calls is None else timing_calls
    warmup_calls = profile.warmup_calls if warmup_calls is None else warmup_calls
    gif_episodes = profile.gif_episodes if gif_episodes is None else gif_episodes
    if batch is not None and batch < 1:
        raise LewmBenchError(f"batch must be >= 1 episodes per planning call; got {batch}")
    out_dir = Path(out) if out else run_dir("eval", env, agent, profile.name, seed, root)
    check_output_folder(root, "--root")  # before the work: summary.csv is written there at the end
    check_output_folder(out_dir)
    _check_summary(summary_path(root))
    with lock_output(out_dir):  # one writer per evaluation folder
        return _evaluate(env, agent, profile, checkpoint, data, out_dir, seed, protocol, context, cem,
                         receding_horizon, timing_calls, planner_name, warmup_calls, gif_episodes, root, batch,
                         start_time, logger)


def _evaluate(env: str, agent: str, profile: Profile, checkpoint: str | os.PathLike[str] | None,
              data: str | os.PathLike[str] | None, out_dir: Path, seed: int, protocol: Protocol, context: int,
              cem: CEMConfig, receding_horizon: int, timing_calls: int, planner_name: str, warmup_calls: int,
              gif_episodes: int, root: str | os.PathLike[str], batch: int | None, start_time: float,
              logger: str) -> EvalResult:
    st = _set_up(env, agent, profile, checkpoint, data, seed, protocol, context, cem, planner_name, root)
    st = dataclasses.replace(st, env_name=env, cem=cem, receding_horizon=receding_horizon)
    out_dir.mkdir(parents=True, exist_ok=True)
    # One simulator per episode of a batch, made once and reused by the next batches: every episode starts with
    # a reset to its task's start and goal states, so it does not depend on what the simulator ran before (Cube's
    # simulators take seconds to build). The first one also serves the timed one-episode calls and the GIF's goals.
    batch = batch or min(len(st.tasks), env_spec(env).entry_point.max_parallel or len(st.tasks))
    envs = [make_env(env, **st.env_kwargs) for _ in range(min(batch, len(st.tasks)))]
    model = st.world_model
    try:
        if model is not None:  # warm-up, not counted
            _time_single_calls(model, st.planner, envs[0], st.tasks, st.codec, context, st.device, warmup_calls, 0)
        else:
            _time_decisions(st, envs[0], warmup_calls)
        records, batched_times = _run_episodes(envs, st, protocol, context, receding_horizon, seed, gif_episodes)
        single_times = _time_decisions(st, envs[0], timing_calls) if model is None else _time_single_calls(
            model, st.planner, envs[0], st.tasks, st.codec, context, st.device, 0, timing_calls)
        gif_goals = [envs[0].render_state(t.goal_state) for t in st.tasks[:gif_episodes]]
    finally:
        for e in envs:
            e.close()
    record = _record(env, agent, profile, seed, st, protocol, context, cem, receding_horizon, records, single_times,
                     batched_times, batch, time.perf_counter() - start_time)
    write_csv(out_dir / "episodes.csv",
              pd.DataFrame([{k: v for k, v in dataclasses.asdict(r).items() if k != "frames"} for r in records]))
    write_json(out_dir / "result.json", dataclasses.asdict(record))
    row = {c: getattr(record, c) for c in SUMMARY_COLUMNS}
    with lock_output(summary_path(root), wait_s=60):  # shared by every evaluation under root: update in turn
        upsert_csv(summary_path(root), pd.DataFrame([row]), {k: row[k] for k in SUMMARY_KEYS})
    _write_gif(out_dir / "episodes.gif", records, gif_goals)
    mirror = make_logger(logger, out_dir, run_name("eval", env, agent, profile.name, seed), dataclasses.asdict(record))
    mirror.log_summary(row)
    mirror.close()
    return EvalResult(out_dir, record)


def _check_summary(path: Path) -> None:
    """Fail before the work, not after it, when the ``summary.csv`` this evaluation will add a row to is damaged."""
    if not path.exists():
        return
    try:
        columns = set(pd.read_csv(path, nrows=1).columns)
    except pd.errors.EmptyDataError:
        return
    except (ValueError, UnicodeDecodeError) as exc:
        columns = {f"unreadable: {exc.__class__.__name__}"}
    if not {"env", "agent", "profile", "seed"} <= columns:
        raise LewmBenchError(f"{path}: not a summary table (expected the columns env, agent, profile, seed, ...); "
                             "move it away (each evaluation's result.json keeps its row) and rerun") from None


def _set_up(env: str, agent: str, profile: Profile, checkpoint: str | os.PathLike[str] | None,
            data: str | os.PathLike[str] | None, seed: int, protocol: Protocol, context: int, cem: CEMConfig,
            planner_name: str, root: str | os.PathLike[str]) -> _Setting:
    """Load the agent and its dataset, sample the tasks and check that they fit together."""
    info = get_agent(agent)
    device = default_device()
    loaded, planner = None, None
    if info.trainable:
        checkpoint = checkpoint or run_dir("train", env, agent, profile.name, seed, root)
        loaded = load_world_model(checkpoint, env, agent, device)
        loaded.run.check_frameskip(profile.frameskip, f"{checkpoint}")
    if info.kind == "world_model":
        planner = make_planner(planner_name, cem)
        if not 1 <= context <= loaded.model.history:
            raise LewmBenchError(f"context must be between 1 and the model's history {loaded.model.history}; "
                                 f"got {context}")
    from lewm_bench.collect.runner import CollectConfig

    profile_data = CollectConfig.from_profile(env, profile)
    if data:
        data_path = Path(data)
    elif loaded is not None:
        data_path = loaded.run.data.resolve(loaded.run_dir)
    else:
        data_path = profile_data.default_path(data_root(root))
    with open_dataset(data_path, env) as ds:
        tasks = sample_tasks(ds, protocol)
        meta = ds.meta
        # a trained agent acts with the statistics it was trained with; an untrained policy only needs the frameskip
        codec = ActionCodec.from_dataset(ds, profile.frameskip) if loaded is None else \
            ActionCodec.from_stats(*loaded.run.action_stats(), loaded.run.frameskip)
    if loaded is not None and info.kind == "policy":
        loaded.model.set_action_codec(codec)
    policy = None
    if info.from_file:
        if checkpoint is None:
            raise LewmBenchError(f"agent {agent!r} runs a policy saved in a file: pass --checkpoint PATH (e.g. a "
                                 "stable-baselines3 model.zip)")
        policy = info.cls.from_file(checkpoint, env, meta.image_size)
    if loaded is not None and loaded.run.data.image_size != meta.image_size:
        raise LewmBenchError(f"{data_path} has {meta.image_size} px frames; the checkpoint expects "
                             f"{loaded.run.data.image_size} px")
    default_data = loaded.run.data.identity if loaded is not None else profile_data.identity()
    other_tasks = meta.identity if default_data and meta.identity != default_data else None  # '': an old run
    words = _training_words(info, loaded) if loaded is not None else ""
    if loaded is not None and loaded.run.data.collector != profile_data.collector.name:
        words += f", trained on {loaded.run.data.collector} data"
    if other_tasks:
        words += f", tasks from {meta.collector} data"
    return _Setting(info, loaded, planner, tasks, codec, data_path, dict(meta.env_kwargs), device, policy,
                    tasks_data=f"{meta.collector}:{meta.identity}", other_tasks=other_tasks, data_words=words)


def _training_words(info: AgentInfo, loaded: LoadedModel) -> str:
    """``", trained with steps_per_epoch 5000"``, ``", model sigreg_weight 0.0"``: the optimisation settings and the
    top-level model settings in which the run differs from the agent's presets for its profile, so that a run trained
    off-preset is never shown as the preset's row (a nested setting is named without its value)."""
    run = loaded.run
    try:
        presets = {"trained with": (run.train, info.train_config_for(get_profile(run.profile))),
                   "model": (run.model, info.config_for(run.profile))}
    except LewmBenchError:  # a profile this version does not know: nothing to compare with
        return ""
    words = ""
    for label, (used, preset) in presets.items():
        if not dataclasses.is_dataclass(preset) or type(used) is not type(preset):
            continue
        changed = [f.name + (f" {v}" if isinstance(v, (int, float, str, bool)) else "")
                   for f in dataclasses.fields(preset) if (v := getattr(used, f.name)) != getattr(preset, f.name)]
        words += f", {label} {', '.join(changed)}" if changed else ""
    return words


def _run_episodes(envs: list[GoalEnv], st: _Setting, protocol: Protocol, context: int, receding_horizon: int,
                  seed: int, gif_episodes: int) -> tuple[list[EpisodeRecord], list[float]]:
    """Every task, as many episodes at a time as there are simulators ``envs``; returns the records and the batched
    call times."""
    records: list[EpisodeRecord] = []
    batched_times: list[float] = []
    model = st.world_model
    for lo in range(0, len(st.tasks), len(envs)):
        chunk = st.tasks[lo:lo + len(envs)]
        seeds = [episode_seed(seed, t) for t in chunk]
        policies = None if model is not None else st.policies(envs[0].action_dim, seeds)
        records += run_mpc(envs[:len(chunk)], chunk, protocol, model, st.planner, st.codec, context,
                           receding_horizon, st.device, policies=policies, seed=seed,
                           keep_frames=gif_episodes if lo == 0 else 0, plan_times=batched_times)
    return records, batched_times


def _record(env: str, agent: str, profile: Profile, seed: int, st: _Setting, protocol: Protocol, context: int,
            cem: CEMConfig, receding_horizon: int, records: list[EpisodeRecord], single_times: list[float],
            batched_times: list[float], batch: int, eval_time: float) -> EvalRecord:
    model = st.world_model
    trained = st.loaded.model if st.loaded else st.policy  # a world model, a trained or a loaded policy
    online_steps = int(trained.online_env_steps) if hasattr(trained, "online_env_steps") else None
    observes = "pixels" if model is not None else getattr(trained or st.info.cls, "observes", "pixels")
    inputs = "pixels" if observes == "pixels" else "privileged state" + (
        " + reward" if getattr(trained or st.info.cls, "uses_rewards", False) else "") + (
        " + simulator" if st.info.plans_in_simulator else "")
    successes = sum(r.success for r in records)
    low, high = wilson_interval(successes, len(records))
    straight = None
    if model is not None:
        held = ClipDataset(st.data_path, "held_out", max(model.history, 2), st.codec.frameskip, env=env)
        idx = torch.randperm(len(held), generator=torch.Generator().manual_seed(0))[:512]
        straight = heldout_metrics(model, held, idx, st.device)["straightness"]
    # a world model's planner, or the CEM an agent runs over the simulator (the oracle): part of the result's identity
    planner = describe(st.planner) if st.planner else describe(CEM(cem)) if st.info.plans_in_simulator else None
    setting = {"protocol": dataclasses.asdict(protocol), "planner": planner, "context": context if model else None,
               "receding_horizon": receding_horizon, "frameskip": st.codec.frameskip,
               # the trained run's setting less its seed: the seeds of one setting are one row of the report
               "agent": st.loaded.run.setting_identity() if st.loaded
               else getattr(st.policy, "identity", f"{agent} (policy)")}
    if st.other_tasks:
        setting["tasks"] = st.other_tasks
    return EvalRecord(
        env=env, agent=agent, profile=profile.name, seed=seed, episodes=len(records),
        success_rate=successes / len(records), success_ci_low=low, success_ci_high=high,
        plan_time_median_s=_pct(single_times, 50), plan_time_p90_s=_pct(single_times, 90),
        plan_calls=len(single_times),
        tokens_per_frame=model.tokens_per_frame if model else None,
        encoder_tokens_per_frame=model.encoder_tokens_per_frame if model else None,
        straightness=straight, params_trainable=count_parameters(trained, True) if trained else 0,
        params_frozen=count_parameters(trained, False) if trained else 0,
        train_time_s=st.loaded.train_time_s if st.loaded else None, eval_time_s=eval_time,
        device=device_name(st.device), commit=git_commit(), protocol=protocol.name, split=protocol.split,
        context=context if model else None, planner=planner,
        plan_time_batched_median_s=_pct(batched_times, 50),
        predictor_tokens_per_call=predictor_tokens_per_call(cem, context, model.history, model.tokens_per_frame)
        if model else None,
        encoder=getattr(trained, "encoder_kind", None), timed_call="planning call" if model else "decision",
        train_data=f"{st.loaded.run.data.collector}:{st.loaded.run.data.identity}" if st.loaded else None,
        tasks_data=st.tasks_data, config_id=content_hash(setting),
        variant=f"{protocol.name}, {protocol.split}, {len(records)} episodes" + (f", {planner}" if planner else "")
        + ("" if inputs == "pixels" else f", {inputs}")
        + (f", {online_steps} env steps online" if online_steps else "") + st.data_words,
        plan_time_p10_s=_pct(single_times, 10), plan_time_batched_p10_s=_pct(batched_times, 10),
        plan_time_batched_p90_s=_pct(batched_times, 90), plan_calls_batched=len(batched_times),
        batched_episodes_per_call=batch, goal_offset=protocol.goal_offset, budget=protocol.budget,
        receding_horizon=receding_horizon, frameskip=st.codec.frameskip, dataset=str(st.data_path),
        env_kwargs=st.env_kwargs, checkpoint=str(st.loaded.run_dir) if st.loaded else getattr(st.policy, "path", None),
        inputs=inputs, online_env_steps=online_steps,
        precision=("bf16" if st.planner.uses_bf16(st.device) else "fp32") if st.planner else None)


def _time_single_calls(model: torch.nn.Module, planner: Planner, env: GoalEnv, tasks: list[Task],
                       codec: ActionCodec, context: int, device: torch.device, warmup: int, calls: int) -> list[float]:
    """Planning time of one episode at a time (the paper's setting), on the tasks' start states."""
    times = []
    for k in range(warmup + calls):
        task = tasks[k % len(tasks)]
        obs, _ = env.reset(options={"state": task.start_state})
        ctx, past = context_window([obs], [], context, codec)
        goal = env.render_state(task.goal_state).transpose(2, 0, 1)
        states = None  # physical states only for a model that uses proprioception: context (start) and goal
        if uses_proprio(model):
            states = torch.from_numpy(np.stack([np.asarray(task.start_state)] * len(ctx) + [
                np.asarray(task.goal_state)]).astype(np.float32)[None]).to(device)
        res = planner.solve(model, torch.from_numpy(ctx[None]).to(device), torch.from_numpy(past[None]).to(device),
                            torch.from_numpy(goal[None]).to(device), seeds=[k], states=states)
        if k >= warmup:
            times.append(res.seconds)
    return times


def _time_decisions(st: _Setting, env: GoalEnv, calls: int) -> list[float]:
    """Seconds of one policy decision (``act`` on one observation and goal), on the tasks' start states."""
    policy = st.policies(env.action_dim, [0])[0]
    times = []
    for k in range(calls):
        task = st.tasks[k % len(st.tasks)]
        obs, _ = env.reset(options={"state": task.start_state})
        goal = env.render_state(task.goal_state)
        start = time.perf_counter()
        policy_act(policy, env, obs, goal, task.goal_state)
        times.append(time.perf_counter() - start)
    return times


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


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
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
