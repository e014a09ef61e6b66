"""Sizes of the physical-understanding analyses (a :class:`lewm_bench.profiles.Profile` holds one of each)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VoEConfig:
    trajectories: int = 40
    """Trajectories (pairs for the t-test); at least 30 for the test to mean something."""
    frames: int = 8
    """Observations per trajectory, ``frameskip`` steps apart."""
    perturb_frame: int = 4
    """Index of the first perturbed observation."""
    seed: int = 0


@dataclass(frozen=True)
class ProbeConfig:
    train_frames: int = 3000
    test_frames: int = 1000
    ridge: float = 1.0
    """L2 penalty of the linear probe (standardised features)."""
    mlp_hidden: int = 256
    mlp_steps: int = 500
    mlp_lr: float = 1e-3
    seed: int = 0
