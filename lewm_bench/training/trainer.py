"""The trainer: ``lewm-bench train --env ENV --agent AGENT`` for every trainable agent.

World models train on clips (frames and action blocks); trainable policies (``gcbc``, ...) on the
batches they draw themselves from the data they attach (see :mod:`lewm_bench.registry`), with the
same optimiser, schedule, logging, checkpoints and resume.

AdamW, linear warm-up then cosine decay stepped per optimiser step, gradient clipping, bf16
autocast (on CUDA; on CPU when the profile asks), seeded data order, dropout and SIGReg directions,
so that ``--resume`` from an epoch checkpoint continues exactly as if never interrupted.
Multi-GPU through ``torchrun`` (DDP, SyncBatchNorm on CUDA, the distributed SIGReg; the global batch
is split over ranks); rank 0 evaluates, logs and saves.

A run folder holds ``config.json`` (the full resolved configuration), ``log.csv`` (one row per
epoch, row 0 measured before training), ``checkpoint.pt`` (the last good epoch) and, once
finished, ``summary.json``. ``logger`` mirrors the log rows and the summary to TensorBoard or wandb
(:mod:`lewm_bench.loggers`); the CSV stays the record.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from lewm_bench.collect.runner import CollectConfig
from lewm_bench.data.clips import ClipDataset
from lewm_bench.errors import LewmBenchError
from lewm_bench.faults import fault_point
from lewm_bench.io import check_output_folder, read_json, remove_stale_temporaries, write_csv, write_json
from lewm_bench.locks import lock_output
from lewm_bench.loggers import ExperimentLogger, check_logger, make_logger
from lewm_bench.metrics import effective_rank, embedding_std, straightness
from lewm_bench.models.layers import count_parameters
from lewm_bench.paths import run_dir as run_dir_of
from lewm_bench.paths import run_name
from lewm_bench.profiles import Profile
from lewm_bench.protocols import proprio_kwargs
from lewm_bench.provenance import Provenance, default_device
from lewm_bench.registry import LossTerms, get_agent
from lewm_bench.training.checkpoint import load_checkpoint, load_run_config, load_state_checked, save_checkpoint
from lewm_bench.training.config import TrainConfig
from lewm_bench.training.run_config import DataRecord, RunConfig

COLLAPSE_MIN_STEPS = 100
METRIC_COLUMNS = ["val_pred_loss", "emb_std_mean", "emb_std_min", "effective_rank", "straightness", "lr",
                  "clips_per_s", "epoch_time_s"]


def log_columns(loss_terms: tuple[str, ...]) -> list[str]:
    """Columns of ``log.csv``: epoch, step, the total loss, one column per loss term, then held-out metrics."""
    return ["epoch", "step", "loss", *loss_terms, *METRIC_COLUMNS]


class TrainingStopped(LewmBenchError):
    """Training stopped on divergence or collapse; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    finished: bool
    """False when the run had already finished before this call (nothing was trained)."""
    summary: dict[str, Any]


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate after ``step`` optimiser steps: linear warm-up, then cosine decay to zero."""
    warmup = max(1, int(round(cfg.warmup_fraction * total)))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


@dataclass
class _Session:
    """What one call of :func:`train` works with: the run, its data, the model and where training stands."""

    run: RunConfig
    run_dir: Path
    model: nn.Module
    """The bare model (what is saved); ``ddp_model`` wraps it when distributed."""
    ddp_model: nn.Module
    optimizer: torch.optim.Optimizer
    train_set: ClipDataset
    held_set: ClipDataset
    held_idx: torch.Tensor
    device: torch.device
    rank: int
    world: int
    steps_per_epoch: int
    num_samples: int
    """Training samples an epoch draws from: clips (world models) or the policy's ``attach_data`` count."""
    policy: bool = False
    """A trainable policy (batches from ``training_batch``) rather than a world model (clips)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """``log.csv`` so far (row 0: before training)."""
    start_epoch: int = 1
    step: int = 0
    train_time: float = 0.0
    prepare_time: float | None = None
    """Seconds of ``prepare`` (None when resumed: it ran in an earlier call)."""
    logger: ExperimentLogger | None = None
    """Rank 0's mirror of the log rows (``--logger``); None on other ranks."""

    @property
    def tcfg(self) -> TrainConfig:
        return self.run.train

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.tcfg.epochs


def train(env: str, profile: Profile, agent: str = "lewm", data: str | os.PathLike[str] | None = None,
          out: str | os.PathLike[str] | None = None, seed: int = 0, resume: bool = False, force: bool = False,
          progress: bool = True, model_config: Any | None = None, train_config: TrainConfig | None = None,
          data_root: str | os.PathLike[str] = "runs/data", logger: str = "csv") -> TrainResult:
    """Train ``agent`` on ``env``'s dataset with ``profile``'s sizes; see the module docstring.

    Args:
        env: short env name.
        profile: size preset (training sizes, frameskip, dataset location).
        agent: a registered world-model agent (``lewm``, ``pldm``, ``dinowm`` or a plugin).
        data: dataset file (default: the profile's dataset under ``data_root``).
        out: run folder (default ``runs/train/ENV/AGENT-PROFILE-seedS``).
        seed: training seed.
        resume: continue an interrupted run from its last checkpoint.
        force: delete an existing run at ``out`` and start over.
        model_config: the agent's config (default: its preset for the profile), e.g. LeWM with
            ``sigreg_weight=0``.
        train_config: optimisation settings (default: the agent's recipe for the profile, else the profile's).
        logger: ``csv`` (only the run's CSV), ``tensorboard`` or ``wandb`` (mirrors of the log rows).
    """
    check_logger(logger)
    info = get_agent(agent)
    if not info.trainable:
        raise LewmBenchError(f"agent {agent!r} is a {info.kind} with nothing to train; evaluate it directly: "
                             f"lewm-bench eval --env {env} --agent {agent}")
    rank, world, local_rank = _dist_info()
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = default_device(local_rank)
    data_path = Path(data) if data is not None else CollectConfig.from_profile(env, profile).default_path(data_root)
    run_dir = Path(out) if out is not None else run_dir_of("train", env, agent, profile.name, seed)
    if rank == 0:  # before any work: a folder we could not write, or one another process is writing, fails now
        check_output_folder(run_dir)
    with lock_output(run_dir) if rank == 0 else contextlib.nullcontext():
        if rank == 0:  # e.g. a checkpoint half-written when a run was killed
            remove_stale_temporaries(run_dir)
        model_config = model_config if model_config is not None else info.config_for(profile.name)
        tcfg = train_config or info.train_config_for(profile)
        train_set, held_set, run = _resolve_run(agent, env, profile, seed, data_path, run_dir, model_config, tcfg,
                                                world, device, explicit_data=data is not None)
        if info.learns_online:
            if world > 1:
                raise LewmBenchError(f"agent {agent!r} learns online in one process; run it without torchrun")
            return _train_online(run, run_dir, dict(train_set.meta.env_kwargs), resume, force, device, progress,
                                 logger)
        finished, state = _existing_run(run_dir, run, resume, force, rank)
        if finished is not None:
            return TrainResult(run_dir, False, finished)
        s = _setup(info.cls, run, run_dir, train_set, held_set, state, device, rank, world, local_rank, progress,
                   logger)
        try:
            for epoch in range(s.start_epoch, s.tcfg.epochs + 1):
                sums, elapsed = _train_epoch(s, epoch, progress)
                if rank == 0:
                    _end_epoch(s, epoch, sums, elapsed)
            summary = _write_summary(s) if rank == 0 else {}
        finally:
            if s.logger is not None:
                s.logger.close()
        if world > 1:  # every rank leaves together: a rank exiting while rank 0 still writes can abort gloo's teardown
            dist.barrier()
            if owns_group:
                dist.destroy_process_group()
        return TrainResult(run_dir, True, summary)


def _train_online(run: RunConfig, run_dir: Path, env_kwargs: dict[str, Any], resume: bool, force: bool,
                  device: torch.device, progress: bool, logger: str = "csv") -> TrainResult:
    """A policy that learns in the env (``learn``): it trains and checkpoints into the run folder itself; the
    trainer writes config.json, then checkpoint.pt with the trained weights and summary.json. ``force`` empties
    the run folder first (the learner's own checkpoints included)."""
    if force:
        for entry in run_dir.iterdir() if run_dir.is_dir() else ():
            if not entry.name.endswith(".lock"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    finished, _ = _existing_run(run_dir, run, resume, False, 0)
    if finished is not None:
        return TrainResult(run_dir, False, finished)
    model = get_agent(run.agent).build(run.model, run.data.image_size, run.data.action_dim, run.env)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", run.to_dict())
    torch.manual_seed(run.seed)
    seconds = model.learn(env_kwargs, run.seed, run_dir, resume, progress)
    save_checkpoint(run_dir / "checkpoint.pt", {"agent": run.agent, "env": run.env, "config": run.to_dict(),
                                                "model": model.state_dict(), "train_time_s": seconds})
    summary = {"run_dir": str(run_dir), "agent": run.agent, "env": run.env, "profile": run.profile,
               "seed": run.seed, "online_env_steps": int(getattr(model, "online_env_steps", 0)),
               "uses_rewards": bool(getattr(model, "uses_rewards", False)), "observes": getattr(model, "observes", ""),
               "train_time_s": seconds, "device": str(device),
               "params": {"trainable": count_parameters(model, True), "frozen": count_parameters(model, False)}}
    write_json(run_dir / "summary.json", summary)
    mirror = make_logger(logger, run_dir, run_name("train", run.env, run.agent, run.profile, run.seed), run.to_dict())
    mirror.log_summary(summary)  # the learner's own rows are SB3's progress.csv in the run folder
    mirror.close()
    return TrainResult(run_dir, True, summary)


def _resolve_run(agent: str, env: str, profile: Profile, seed: int, data_path: Path, run_dir: Path, model_config: Any,
                 tcfg: TrainConfig, world: int, device: torch.device, explicit_data: bool
                 ) -> tuple[ClipDataset, ClipDataset, RunConfig]:
    """The datasets and the run's full record (the dataset's identity and action statistics included)."""
    if not data_path.exists():
        raise LewmBenchError(f"no dataset for {env} at {data_path}; create it with: lewm-bench collect --env {env} "
                             f"--profile {profile.name}" + (f" --out {data_path}" if explicit_data else ""))
    history = getattr(model_config, "history", 1)  # a policy's config has none: its clips are transitions
    train_set = ClipDataset(data_path, "train", history, profile.frameskip, env=env)
    # held-out clips have at least 3 frames, so that straightness is defined for any history
    held_set = ClipDataset(data_path, "held_out", max(history, 2), profile.frameskip, env=env)
    meta = train_set.meta
    record = DataRecord(
        path=os.path.relpath(data_path.resolve(), run_dir.resolve()), identity=meta.identity,
        image_size=meta.image_size, collector=meta.collector, episodes=meta.num_episodes,
        action_dim=int(train_set[0].actions.shape[-1]), action_mean=tuple(map(float, train_set.action_mean)),
        action_std=tuple(map(float, train_set.action_std)))
    run = RunConfig(agent, env, profile.name, seed, profile.frameskip, model_config, tcfg, record, world,
                    Provenance.now(device))
    return train_set, held_set, run


def _existing_run(run_dir: Path, run: RunConfig, resume: bool, force: bool, rank: int
                  ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(summary of a finished run, None) or (None, checkpoint state to resume from, or None to start)."""
    ckpt_path, summary_path = run_dir / "checkpoint.pt", run_dir / "summary.json"
    if force and rank == 0:
        for p in (ckpt_path, summary_path, run_dir / "log.csv", run_dir / "config.json"):
            p.unlink(missing_ok=True)
    if summary_path.exists():
        _check_same_run(run_dir, load_run_config(run_dir), run)
        return read_json(summary_path, "delete it and rerun with --resume to finish the run"), None
    if not ckpt_path.exists():
        return None, None
    if not resume:
        raise LewmBenchError(f"{run_dir} holds an unfinished run; pass --resume to continue it or --force to "
                             "start over")
    state = load_checkpoint(ckpt_path, run.agent, run.env)
    _check_same_run(run_dir, RunConfig.from_dict(state["config"]), run)
    return None, state


def _setup(cls: type, run: RunConfig, run_dir: Path, train_set: ClipDataset, held_set: ClipDataset,
           state: dict[str, Any] | None, device: torch.device, rank: int, world: int, local_rank: int,
           progress: bool, logger: str = "csv") -> _Session:
    """Build the model and optimiser (fresh, or from ``state``), write config.json and log row 0."""
    tcfg = run.train
    torch.manual_seed(run.seed)
    model = get_agent(run.agent).build(run.model, run.data.image_size, run.data.action_dim, run.env).to(device)
    prepare_time = None
    if state is None:
        prepare_time = 0.0
        if hasattr(model, "prepare"):  # e.g. pre-train a frozen encoder (saved with the model)
            start = time.perf_counter()
            model.prepare(train_set, device, run.seed, progress and rank == 0)
            prepare_time = time.perf_counter() - start
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tcfg.lr,
                                  weight_decay=tcfg.weight_decay)
    s = _Session(run, run_dir, model, model, optimizer, train_set, held_set, torch.empty(0, dtype=torch.long),
                 device, rank, world, 0, len(train_set), policy=getattr(cls, "kind", None) == "policy",
                 train_time=prepare_time or 0.0, prepare_time=prepare_time)
    if state is not None:
        load_state_checked(model, state["model"], str(run_dir / "checkpoint.pt"))
        optimizer.load_state_dict(state["optimizer"])
        s.rows, s.start_epoch, s.step, s.train_time = state["log"], state["epoch"] + 1, state["step"], \
            state["train_time_s"]
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    if s.policy:  # its training data (e.g. frozen features), built at every start and resume (timed as training)
        start = time.perf_counter()
        s.num_samples = model.attach_data(train_set, device, progress and rank == 0)
        s.train_time += time.perf_counter() - start
    s.steps_per_epoch = tcfg.steps_per_epoch or max(1, s.num_samples // tcfg.batch_size)
    if world > 1:
        if device.type == "cuda":  # SyncBatchNorm is CUDA-only; on CPU (gloo) BatchNorm stays per rank
            s.model = model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        s.ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    s.held_idx = torch.randperm(len(held_set), generator=torch.Generator().manual_seed(run.seed))[:tcfg.eval_clips]
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", run.to_dict())
        s.logger = make_logger(logger, run_dir, run_name("train", run.env, run.agent, run.profile, run.seed),
                               run.to_dict())
        if not s.rows:
            s.rows.append(dict(epoch=0, step=0, **heldout_metrics(model, held_set, s.held_idx, device)))
            _write_log(run_dir, s.rows, model.loss_terms)
            s.logger.log_row(s.rows[0], 0)
    return s


def _train_epoch(s: _Session, epoch: int, progress: bool) -> tuple[dict[str, float], float]:
    """One epoch of optimiser steps; returns the summed loss terms and the wall time."""
    tcfg, model = s.tcfg, s.model
    order = _epoch_order(s.num_samples, s.steps_per_epoch * tcfg.batch_size, s.run.seed, epoch)
    local_batch = tcfg.batch_size // s.world
    use_bf16 = tcfg.uses_bf16(s.device)
    model.train()
    sums = dict.fromkeys(("loss", *model.loss_terms), 0.0)
    start = time.perf_counter()
    bar = tqdm(range(s.steps_per_epoch), desc=f"{s.run.env}/{s.run.agent} epoch {epoch}/{tcfg.epochs}", unit="step",
               disable=not progress or s.rank != 0, leave=False)
    for i in bar:
        global_idx = order[i * tcfg.batch_size:(i + 1) * tcfg.batch_size]
        local_idx = global_idx[s.rank * local_batch:(s.rank + 1) * local_batch]
        extra: dict[str, torch.Tensor] = {}
        if s.policy:  # seeded per step, so a resumed run draws the same goals
            goals_gen = torch.Generator().manual_seed(s.run.seed * 1_000_033 + s.step)
            inputs: tuple = (model.training_batch(local_idx, goals_gen),)
        else:
            frames, actions, states = _collate(s.train_set, local_idx, s.device)
            inputs, extra = (frames, actions), proprio_kwargs(model, states)
        terms = _step(s, inputs, epoch, use_bf16, extra)
        sums["loss"] += terms.loss.detach().item()
        for k in model.loss_terms:
            sums[k] += terms.terms[k].detach().item()
        bar.set_postfix(loss=f"{terms.loss.item():.4f}")
    bar.close()
    return sums, time.perf_counter() - start


def _step(s: _Session, inputs: tuple, epoch: int, use_bf16: bool,
          extra: dict[str, torch.Tensor] | None = None) -> LossTerms:
    """One optimiser step at the scheduled learning rate on ``inputs`` (a world model's (frames, actions), a
    policy's (batch,)); stops on a non-finite loss or out of memory.

    ``extra``: further keyword inputs of the loss (the states, for a model that uses proprioception)."""
    tcfg = s.tcfg
    for group in s.optimizer.param_groups:
        group["lr"] = lr_at(s.step, s.total_steps, tcfg)
    gen = torch.Generator(s.device).manual_seed(s.run.seed * 1_000_003 + s.step)
    try:
        with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            terms = s.ddp_model(*inputs, gen, **(extra or {}))
        if not torch.isfinite(terms.loss):
            raise TrainingStopped(
                f"divergence at epoch {epoch}, step {s.step}: loss is {terms.loss.item()}; the last good "
                f"checkpoint (epoch {epoch - 1}) is kept in {s.run_dir}; lower --lr")
        s.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        nn.utils.clip_grad_norm_([p for p in s.model.parameters() if p.requires_grad], tcfg.grad_clip)
        s.optimizer.step()
        if hasattr(s.model, "after_step"):  # e.g. a policy's target networks
            s.model.after_step()
    except torch.OutOfMemoryError:
        raise LewmBenchError(f"out of memory training {s.run.agent} with profile {s.run.profile} (batch "
                             f"{tcfg.batch_size}) on {s.device}; use a smaller --batch-size or --profile "
                             "cpu/smoke") from None
    s.step += 1
    fault_point("train-step")
    return terms


def _end_epoch(s: _Session, epoch: int, sums: dict[str, float], elapsed: float) -> None:
    """Rank 0: held-out metrics, the log row, the collapse check and the checkpoint."""
    tcfg, model = s.tcfg, s.model
    metrics_start = time.perf_counter()
    metrics = heldout_metrics(model, s.held_set, s.held_idx, s.device)
    epoch_time = elapsed + time.perf_counter() - metrics_start  # optimiser steps + held-out metrics
    s.train_time += epoch_time
    row = dict(epoch=epoch, step=s.step, **{k: v / s.steps_per_epoch for k, v in sums.items()}, **metrics,
               lr=lr_at(s.step - 1, s.total_steps, tcfg), clips_per_s=s.steps_per_epoch * tcfg.batch_size / elapsed,
               epoch_time_s=epoch_time)
    s.rows.append(row)
    _write_log(s.run_dir, s.rows, model.loss_terms)
    if s.logger is not None:
        s.logger.log_row(row, s.step)
    first = model.loss_terms[0]
    tqdm.write(f"epoch {epoch}: loss {row['loss']:.4f} {first} {row[first]:.4f} "
               f"| held-out pred {row['val_pred_loss']:.4f} std {row['emb_std_mean']:.3f} "
               f"rank {row['effective_rank']:.1f} straight {row['straightness']:.3f}")
    # BatchNorm's running statistics (used in eval mode) need ~50 steps to settle: judge after 100.
    if getattr(model, "check_collapse", True) and s.step >= COLLAPSE_MIN_STEPS and \
            row["emb_std_mean"] < tcfg.collapse_std:
        raise TrainingStopped(
            f"representational collapse at epoch {epoch}: held-out embedding std {row['emb_std_mean']:.2e} < "
            f"{tcfg.collapse_std:g} (effective rank {row['effective_rank']:.2f}); the last good checkpoint "
            f"(epoch {epoch - 1}) is kept in {s.run_dir}; check the anti-collapse loss weights")
    save_checkpoint(s.run_dir / "checkpoint.pt", {
        "agent": s.run.agent, "env": s.run.env, "config": s.run.to_dict(), "model": model.state_dict(),
        "optimizer": s.optimizer.state_dict(), "epoch": epoch, "step": s.step, "log": s.rows,
        "train_time_s": s.train_time,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None},
    })


def _write_summary(s: _Session) -> dict[str, Any]:
    run, model = s.run, s.model
    summary = {"run_dir": str(s.run_dir), "agent": run.agent, "env": run.env, "profile": run.profile,
               "seed": run.seed, "epochs": run.train.epochs, "steps": s.step, "train_time_s": s.train_time,
               "device": str(s.device), "world_size": s.world, "prepare_time_s": s.prepare_time,
               "precision": "bf16" if run.train.uses_bf16(s.device) else "fp32",
               "params": {"trainable": count_parameters(model, True), "frozen": count_parameters(model, False)},
               "encoder": getattr(model, "encoder_kind", None), "final": s.rows[-1], "initial": s.rows[0]}
    write_json(s.run_dir / "summary.json", summary)
    if s.logger is not None:
        s.logger.log_summary(summary)
    return summary


def _check_same_run(run_dir: Path, stored: RunConfig, wanted: RunConfig) -> None:
    if stored.identity() != wanted.identity():
        diff = stored.differences(wanted) or ["its identity"]
        raise LewmBenchError(f"{run_dir}: holds a run trained with another config (differs in {', '.join(diff)}); "
                             "use another --out or --force")


def _epoch_order(n: int, needed: int, seed: int, epoch: int) -> torch.Tensor:
    """Clip indices for one epoch: seeded permutations of all clips, concatenated until long enough."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perms = [torch.randperm(n, generator=g) for _ in range(max(1, -(-needed // n)))]
    return torch.cat(perms)[:needed]


def _collate(ds: ClipDataset, idx: torch.Tensor, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frames, action blocks and physical states of clips ``idx``, on ``device``."""
    clips = [ds[int(i)] for i in idx]
    frames = torch.stack([c.frames for c in clips]).to(device, non_blocking=True)
    actions = torch.stack([c.actions for c in clips]).to(device, non_blocking=True)
    states = torch.stack([c.states for c in clips]).to(device, non_blocking=True)
    return frames, actions, states


@torch.no_grad()
def heldout_metrics(model: nn.Module, held: ClipDataset, idx: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Prediction loss and representation metrics (std, effective rank, straightness) on clips ``idx`` of
    ``held``, in eval mode; patch embeddings count as one vector per frame. A model with its own
    ``heldout_metrics`` (a trainable policy) computes them itself (same keys)."""
    if hasattr(model, "heldout_metrics"):
        return model.heldout_metrics(held, idx, device)
    was_training = model.training
    model.eval()
    embs, losses = [], []
    for chunk in idx.split(256):
        frames, actions, states = _collate(held, chunk, device)
        z = model.encode(frames, **proprio_kwargs(model, states))
        h = model.history  # predict over the last history + 1 frames, the clip length trained on
        pred = model.predict(z[:, -h - 1:-1], actions[:, -h:])
        losses.append(float(nn.functional.mse_loss(pred, z[:, -h:])) * len(chunk))
        embs.append(z.float().flatten(2).cpu())  # patch tokens: one vector per frame
    model.train(was_training)
    z = torch.cat(embs)
    std_mean, std_min = embedding_std(z)
    return {"val_pred_loss": sum(losses) / len(z), "emb_std_mean": std_mean, "emb_std_min": std_min,
            "effective_rank": effective_rank(z), "straightness": straightness(z)}


def _write_log(run_dir: Path, rows: list[dict[str, Any]], loss_terms: tuple[str, ...]) -> None:
    write_csv(run_dir / "log.csv", pd.DataFrame(rows, columns=log_columns(loss_terms)))
