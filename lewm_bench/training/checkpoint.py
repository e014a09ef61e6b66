"""Checkpoints: weights, optimiser and RNG state, the full config and the dataset statistics.

Written atomically (temporary file, then rename) so an interrupted write never replaces the last
good checkpoint. Loading checks the agent, the environment and the architecture, and reports the
first mismatching keys or shapes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lewm_bench.errors import LewmBenchError

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(payload, checkpoint_version=CHECKPOINT_VERSION), tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
