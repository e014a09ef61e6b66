"""Checkpoints: weights, optimiser and RNG state, the full config and the dataset statistics.

Written atomically (temporary file, then rename) so an interrupted write never replaces the last
good checkpoint. Loading checks the agent, the environment and the architecture, and reports the
first mismatching keys or shapes; :func:`load_world_model` gives back the model and its
:class:`~lewm_bench.training.run_config.RunConfig`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lewm_bench.errors import LewmBenchError
from lewm_bench.faults import fault_point
from lewm_bench.io import atomic_path, read_json
from lewm_bench.registry import get_agent
from lewm_bench.training.run_config import RunConfig

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically and flushed to disk: a kill leaves the previous one intact."""
    with atomic_path(path, fsync=True) as tmp:
        torch.save(dict(payload, checkpoint_version=CHECKPOINT_VERSION), tmp)
        fault_point("checkpoint-tmp")


def load_checkpoint(path: str | os.PathLike[str], agent: str | None = None, env: str | None = None) -> dict[str, Any]:
    """Load a checkpoint file (or a run folder holding ``checkpoint.pt``) and check what it is for."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise LewmBenchError(f"{path}: no checkpoint; train one with: lewm-bench train --env {env or 'ENV'} "
                             f"--agent {agent or 'AGENT'}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged file
        raise LewmBenchError(f"{path}: unreadable checkpoint ({type(exc).__name__}); delete it and retrain") from None
    if not isinstance(ckpt, dict) or "checkpoint_version" not in ckpt:
        raise LewmBenchError(f"{path}: not a lewm-bench checkpoint")
    if agent is not None and ckpt["agent"] != agent:
        raise LewmBenchError(f"{path}: a checkpoint of agent {ckpt['agent']!r}, not {agent!r}")
    if env is not None and ckpt["env"] != env:
        raise LewmBenchError(f"{path}: a checkpoint for env {ckpt['env']!r}, not {env!r}")
    return ckpt


def state_mismatches(module: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """The first missing, unexpected and mis-shaped keys of ``state`` for ``module`` ('' when it fits)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: expected {tuple(own[k].shape)}, got {tuple(state[k].shape)}"
              for k in own if k in state and own[k].shape != state[k].shape]
    return "; ".join(f"{name} ({len(items)}): {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                     for name, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
                     if items)


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that reports the first missing, unexpected or mis-shaped keys."""
    problems = state_mismatches(module, state)
    if problems:
        raise LewmBenchError(f"{source}: weights do not fit the model ({problems}); was it trained with another "
                             "profile or config?")
    module.load_state_dict(state)


def load_run_config(run_dir: str | os.PathLike[str]) -> RunConfig:
    """The :class:`RunConfig` a run folder's ``config.json`` holds."""
    path = Path(run_dir) / "config.json"
    try:
        return RunConfig.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise LewmBenchError(f"{path}: unreadable run configuration ({type(exc).__name__}); retrain with --force") \
            from None


@dataclass(frozen=True)
class LoadedModel:
    """A trained world model in eval mode with its run record."""

    model: nn.Module
    run: RunConfig
    run_dir: Path
    """The folder the checkpoint lives in (recorded paths are relative to it)."""
    train_time_s: float | None
    """From the run's ``summary.json`` when it finished."""


def load_world_model(checkpoint: str | os.PathLike[str], env: str, agent: str | None = None,
                     device: torch.device | str = "cpu") -> LoadedModel:
    """A trained world model (any registered agent) from a checkpoint file or run folder.

    ``agent``: when given, the checkpoint must belong to it.
    """
    ckpt = load_checkpoint(checkpoint, agent, env)
    run = RunConfig.from_dict(ckpt["config"])
    model = get_agent(run.agent).build(run.model, run.data.image_size, run.data.action_dim, run.env)
    load_state_checked(model, ckpt["model"], str(checkpoint))
    run_dir = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
    summary = run_dir / "summary.json"
    train_time = read_json(summary, "delete it and rerun the same train command with --resume")["train_time_s"] \
        if summary.exists() else None
    return LoadedModel(model.to(device).eval(), run, run_dir, train_time)
