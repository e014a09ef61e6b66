"""Training hyper-parameters (one frozen dataclass; presets live in :mod:`lewm_bench.profiles`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

BF16_MODES = ("cuda", "auto", "always", "never")
"""When bf16 autocast is on: ``cuda`` (on CUDA only), ``auto`` (wherever the device has fast bf16 kernels: CUDA, or a
CPU with oneDNN's AVX-512 / AMX bf16 kernels; fp32 elsewhere), ``always`` (also on any CPU), ``never``."""


def check_bf16_mode(mode: str) -> None:
    """Raise ValueError unless ``mode`` is one of :data:`BF16_MODES`."""
    if mode not in BF16_MODES:
        raise ValueError(f"bf16 must be one of {', '.join(map(repr, BF16_MODES))}; got {mode!r}")


def bf16_autocast(mode: str, device: torch.device) -> bool:
    """Whether work on ``device`` runs under bf16 autocast for ``mode`` (one of :data:`BF16_MODES`)."""
    from lewm_bench.provenance import native_bf16

    check_bf16_mode(mode)
    return mode == "always" or (mode == "cuda" and device.type == "cuda") or (mode == "auto" and native_bf16(device))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the LeWM reference code's (SPEC §5.1)."""

    epochs: int = 10
    steps_per_epoch: int | None = None
    """Optimiser steps per epoch; None = one pass over the training clips."""
    batch_size: int = 128
    """Clips per optimiser step (the global batch when distributed)."""
    lr: float = 5e-5
    weight_decay: float = 1e-3
    warmup_fraction: float = 0.01
    """Linear warm-up over this fraction of all steps, then cosine decay to 0 (stepped per optimiser step)."""
    grad_clip: float = 1.0
    bf16: str = "cuda"
    """bf16 autocast, one of :data:`BF16_MODES`."""
    collapse_std: float = 0.05
    """Stop when the held-out per-dimension embedding std (mean over dims, eval mode) falls below this
    (checked from 100 optimiser steps on, once BatchNorm's running statistics have settled)."""
    eval_clips: int = 512
    """Held-out clips for the per-epoch metrics (straightness, std, effective rank)."""

    def uses_bf16(self, device: torch.device) -> bool:
        """Whether training on ``device`` runs under bf16 autocast (see ``bf16``)."""
        return bf16_autocast(self.bf16, device)

    def __post_init__(self) -> None:
        check_bf16_mode(self.bf16)
        if self.epochs < 1 or self.batch_size < 1 or (self.steps_per_epoch is not None and self.steps_per_epoch < 1):
            raise ValueError(f"epochs, batch_size and steps_per_epoch must be >= 1; got {self}")
