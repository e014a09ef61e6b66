"""Training hyper-parameters (one frozen dataclass; presets live in :mod:`lewm_bench.profiles`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


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
    """bf16 autocast: ``cuda`` (on CUDA only), ``auto`` (wherever the device has fast bf16 kernels: CUDA, or a CPU
    with oneDNN's AVX-512 / AMX bf16 kernels; fp32 elsewhere), ``always`` (also on any CPU), ``never``."""
    collapse_std: float = 0.05
    """Stop when the held-out per-dimension embedding std (mean over dims, eval mode) falls below this
    (checked from 100 optimiser steps on, once BatchNorm's running statistics have settled)."""
    eval_clips: int = 512
    """Held-out clips for the per-epoch metrics (straightness, std, effective rank)."""

    def uses_bf16(self, device: torch.device) -> bool:
        """Whether training on ``device`` runs under bf16 autocast (see ``bf16``)."""
        from lewm_bench.provenance import native_bf16

        return self.bf16 == "always" or (self.bf16 == "cuda" and device.type == "cuda") or (
            self.bf16 == "auto" and native_bf16(device))

    def __post_init__(self) -> None:
        if self.bf16 not in ("cuda", "auto", "always", "never"):
            raise ValueError(f"bf16 must be 'cuda', 'auto', 'always' or 'never'; got {self.bf16!r}")
        if self.epochs < 1 or self.batch_size < 1 or (self.steps_per_epoch is not None and self.steps_per_epoch < 1):
            raise ValueError(f"epochs, batch_size and steps_per_epoch must be >= 1; got {self}")
