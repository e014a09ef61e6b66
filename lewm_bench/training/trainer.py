"""The trainer: ``lewm-bench train --env ENV --agent AGENT`` for every registered world model.

AdamW, linear warm-up then cosine decay stepped per optimiser step, gradient clipping, bf16
autocast (on CUDA; on CPU when the profile asks), seeded data order, dropout and SIGReg directions,
so that ``--resume`` from an epoch checkpoint continues exactly as if never interrupted.
Multi-GPU through ``torchrun`` (DDP, SyncBatchNorm on CUDA, the distributed SIGReg; the global batch
is split over ranks); rank 0 evaluates, logs and saves.

A run folder holds ``config.json`` (the full resolved configuration), ``log.csv`` (one row per
epoch, row 0 measured before training), ``checkpoint.pt`` (the last good epoch) and, once
finished, ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from lewm_bench import __version__
from lewm_bench.collect.runner import CollectConfig
from lewm_bench.data.clips import ClipDataset
from lewm_bench.errors import LewmBenchError
from lewm_bench.io import write_csv, write_json
from lewm_bench.metrics import effective_rank, embedding_std, straightness
from lewm_bench.models.layers import count_parameters
from lewm_bench.profiles import Profile
from lewm_bench.registry import get_agent
from lewm_bench.training.checkpoint import load_checkpoint, load_state_checked, save_checkpoint
from lewm_bench.training.config import TrainConfig

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


def default_data_path(env: str, profile: Profile, data_root: str | os.PathLike[str] = "runs/data") -> Path:
    """Where ``lewm-bench collect --env ENV --profile P`` writes the profile's dataset."""
    return CollectConfig.from_profile(env, profile).default_path(data_root)


def default_run_dir(env: str, agent: str, profile: Profile, seed: int, root: str | os.PathLike[str] = "runs/train"
                    ) -> Path:
    return Path(root) / env / f"{agent}-{profile.name}-seed{seed}"


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


def train(env: str, profile: Profile, agent: str = "lewm", data: str | os.PathLike[str] | None = None,
          out: str | os.PathLike[str] | None = None, seed: int = 0, resume: bool = False, force: bool = False,
          progress: bool = True, model_config: Any | None = None, train_config: TrainConfig | None = None,
          data_root: str | os.PathLike[str] = "runs/data") -> TrainResult:
    """Train ``agent`` on ``env``'s dataset with ``profile``'s sizes; see the module docstring.

    Args:
        env: short env name.
        profile: size preset (model, training, dataset location).
        agent: a registered world-model agent (``lewm``, ``pldm``, ``dinowm`` or a plugin).
        data: dataset file (default: the profile's dataset under ``data_root``).
        out: run folder (default ``runs/train/ENV/AGENT-PROFILE-seedS``).
        seed: training seed.
        resume: continue an interrupted run from its last checkpoint.
        force: delete an existing run at ``out`` and start over.
        model_config: the agent's config (default: ``default_config(profile)``), e.g. LeWM with
            ``sigreg_weight=0``.
        train_config: optimisation settings (default: the profile's).
    """
    info = get_agent(agent)
    if info.kind != "world_model":
        raise LewmBenchError(f"agent {agent!r} is a {info.kind} with nothing to train; evaluate it directly: "
                             f"lewm-bench eval --env {env} --agent {agent}")
    model_config = model_config if model_config is not None else info.cls.default_config(profile)
    tcfg = train_config or profile.train
    data_path = Path(data) if data is not None else default_data_path(env, profile, data_root)
    if not data_path.exists():
        raise LewmBenchError(f"no dataset for {env} at {data_path}; create it with: lewm-bench collect --env {env} "
                             f"--profile {profile.name}" + (f" --out {data_path}" if data is not None else ""))
    run_dir = Path(out) if out is not None else default_run_dir(env, agent, profile, seed)
    rank, world, local_rank = _dist_info()
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")

    train_set = ClipDataset(data_path, "train", model_config.history, profile.frameskip, env=env)
    # held-out clips have at least 3 frames, so that straightness is defined for any history
    held_set = ClipDataset(data_path, "held_out", max(model_config.history, 2), profile.frameskip, env=env)
    action_dim = int(train_set[0].actions.shape[-1])
    config = {
        "agent": agent, "env": env, "profile": profile.name, "seed": seed, "frameskip": profile.frameskip,
        "model": dataclasses.asdict(model_config), "train": dataclasses.asdict(tcfg),
        "data": {"path": str(data_path), "image_size": train_set.meta.image_size, "collector": train_set.meta.collector,
                 "episodes": train_set.meta.num_episodes, "action_dim": action_dim,
                 "action_mean": train_set.action_mean.tolist(), "action_std": train_set.action_std.tolist()},
        "world_size": world, "lewm_bench_version": __version__,
    }
    config = json.loads(json.dumps(config))  # tuples -> lists, as stored

    ckpt_path, summary_path = run_dir / "checkpoint.pt", run_dir / "summary.json"
    if force and rank == 0:
        for p in (ckpt_path, summary_path, run_dir / "log.csv", run_dir / "config.json"):
            p.unlink(missing_ok=True)
    if summary_path.exists():
        _check_same_config(run_dir, json.loads((run_dir / "config.json").read_text()), config)
        return TrainResult(run_dir, False, json.loads(summary_path.read_text()))
    state = None
    if ckpt_path.exists():
        if not resume:
            raise LewmBenchError(f"{run_dir} holds an unfinished run; pass --resume to continue it or --force to "
                                 "start over")
        state = load_checkpoint(ckpt_path, agent, env)
        _check_same_config(run_dir, state["config"], config)

    torch.manual_seed(seed)
    model = info.cls(model_config, train_set.meta.image_size, action_dim).to(device)
    prepare_time = 0.0
    if state is None and hasattr(model, "prepare"):  # e.g. pre-train a frozen encoder (saved with the model)
        start = time.perf_counter()
        model.prepare(train_set, device, seed, progress and rank == 0)
        prepare_time = time.perf_counter() - start
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tcfg.lr,
                                  weight_decay=tcfg.weight_decay)
    steps_per_epoch = tcfg.steps_per_epoch or max(1, len(train_set) // tcfg.batch_size)
    total_steps = steps_per_epoch * tcfg.epochs
    rows: list[dict[str, Any]] = []
    start_epoch, step, train_time = 1, 0, prepare_time
    if state is not None:
        load_state_checked(model, state["model"], str(ckpt_path))
        optimizer.load_state_dict(state["optimizer"])
        rows, start_epoch, step, train_time = state["log"], state["epoch"] + 1, state["step"], state["train_time_s"]
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    ddp_model: nn.Module = model
    if world > 1:
        if device.type == "cuda":  # SyncBatchNorm is CUDA-only; on CPU (gloo) BatchNorm stays per rank
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ddp_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None)
    use_bf16 = tcfg.bf16 == "always" or (tcfg.bf16 == "cuda" and device.type == "cuda")
    held_idx = torch.randperm(len(held_set), generator=torch.Generator().manual_seed(seed))[:tcfg.eval_clips]

    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", config)
        if not rows:
            rows.append(dict(epoch=0, step=0, **heldout_metrics(model, held_set, held_idx, device)))
            _write_log(run_dir, rows, model.loss_terms)

    local_batch = tcfg.batch_size // world
    for epoch in range(start_epoch, tcfg.epochs + 1):
        order = _epoch_order(len(train_set), steps_per_epoch * tcfg.batch_size, seed, epoch)
        model.train()
        sums = dict.fromkeys(("loss", *model.loss_terms), 0.0)
        start = time.perf_counter()
        bar = tqdm(range(steps_per_epoch), desc=f"{env}/{agent} epoch {epoch}/{tcfg.epochs}", unit="step",
                   disable=not progress or rank != 0, leave=False)
        for i in bar:
            global_idx = order[i * tcfg.batch_size:(i + 1) * tcfg.batch_size]
            batch_idx = global_idx[rank * local_batch:(rank + 1) * local_batch]
            frames, actions = _collate(train_set, batch_idx, device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total_steps, tcfg)
            gen = torch.Generator(device).manual_seed(seed * 1_000_003 + step)
            try:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    terms = ddp_model(frames, actions, gen)
                if not torch.isfinite(terms.loss):
                    raise TrainingStopped(
                        f"divergence at epoch {epoch}, step {step}: loss is {terms.loss.item()}; the last good "
                        f"checkpoint (epoch {epoch - 1}) is kept in {run_dir}; lower --lr")
                optimizer.zero_grad(set_to_none=True)
                terms.loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
                optimizer.step()
            except torch.OutOfMemoryError:
                raise LewmBenchError(f"out of memory training {agent} with profile {profile.name} (batch "
                                     f"{tcfg.batch_size}) on {device}; use a smaller --batch-size or --profile "
                                     "cpu/smoke") from None
            step += 1
            sums["loss"] += terms.loss.detach().item()
            for k in model.loss_terms:
                sums[k] += terms.terms[k].detach().item()
            bar.set_postfix(loss=f"{terms.loss.item():.4f}")
        bar.close()
        elapsed = time.perf_counter() - start
        if rank != 0:
            continue
        metrics = heldout_metrics(model, held_set, held_idx, device)
        epoch_time = time.perf_counter() - start
        train_time += epoch_time
        row = dict(epoch=epoch, step=step, **{k: v / steps_per_epoch for k, v in sums.items()}, **metrics,
                   lr=lr_at(step - 1, total_steps, tcfg), clips_per_s=steps_per_epoch * tcfg.batch_size / elapsed,
                   epoch_time_s=epoch_time)
        rows.append(row)
        _write_log(run_dir, rows, model.loss_terms)
        first = model.loss_terms[0]
        tqdm.write(f"epoch {epoch}: loss {row['loss']:.4f} {first} {row[first]:.4f} "
                   f"| held-out pred {row['val_pred_loss']:.4f} std {row['emb_std_mean']:.3f} "
                   f"rank {row['effective_rank']:.1f} straight {row['straightness']:.3f}")
        # BatchNorm's running statistics (used in eval mode) need ~50 steps to settle: judge after 100.
        if getattr(model, "check_collapse", True) and step >= COLLAPSE_MIN_STEPS and \
                row["emb_std_mean"] < tcfg.collapse_std:
            raise TrainingStopped(
                f"representational collapse at epoch {epoch}: held-out embedding std {row['emb_std_mean']:.2e} < "
                f"{tcfg.collapse_std:g} (effective rank {row['effective_rank']:.2f}); the last good checkpoint "
                f"(epoch {epoch - 1}) is kept in {run_dir}; check the anti-collapse loss weights")
        save_checkpoint(ckpt_path, {
            "agent": agent, "env": env, "config": config, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step, "log": rows, "train_time_s": train_time,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
        })
    if world > 1:  # every rank leaves together: a rank exiting while rank 0 still writes can abort gloo's teardown
        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
    if rank != 0:
        return TrainResult(run_dir, True, {})
    summary = {"run_dir": str(run_dir), "agent": agent, "env": env, "profile": profile.name, "seed": seed,
               "epochs": tcfg.epochs, "steps": step, "train_time_s": train_time, "device": str(device),
               "world_size": world, "prepare_time_s": prepare_time if state is None else None,
               "params": {"trainable": count_parameters(model, True), "frozen": count_parameters(model, False)},
               "encoder": getattr(model, "encoder_kind", None), "final": rows[-1], "initial": rows[0]}
    write_json(summary_path, summary)
    return TrainResult(run_dir, True, summary)


def _check_same_config(run_dir: Path, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    if stored != wanted:
        diff = sorted(k for k in wanted if stored.get(k) != wanted[k])
        raise LewmBenchError(f"{run_dir}: holds a run trained with another config (differs in {', '.join(diff)}); "
                             "use another --out or --force")


def _epoch_order(n: int, needed: int, seed: int, epoch: int) -> torch.Tensor:
    """Clip indices for one epoch: seeded permutations of all clips, concatenated until long enough."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perms = [torch.randperm(n, generator=g) for _ in range(max(1, -(-needed // n)))]
    return torch.cat(perms)[:needed]


def _collate(ds: ClipDataset, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    clips = [ds[int(i)] for i in idx]
    frames = torch.stack([c.frames for c in clips]).to(device, non_blocking=True)
    actions = torch.stack([c.actions for c in clips]).to(device, non_blocking=True)
    return frames, actions


@torch.no_grad()
def heldout_metrics(model: nn.Module, held: ClipDataset, idx: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Prediction loss and representation metrics (std, effective rank, straightness) on clips ``idx`` of
    ``held``, in eval mode; patch embeddings count as one vector per frame."""
    was_training = model.training
    model.eval()
    embs, losses = [], []
    for chunk in idx.split(256):
        frames, actions = _collate(held, chunk, device)
        z = model.encode(frames)
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
