"""Sizes of the physical-understanding analyses (a :class:`lewm_bench.profiles.Profile` holds one of each)."""

from __future__ import annotations

from dataclasses import dataclass

COLOUR_CHANGES = ("object", "frame")


@dataclass(frozen=True)
class VoEConfig:
    trajectories: int = 40
    """Trajectories (pairs for the t-test); at least 30 for the test to mean something."""
    frames: int = 8
    """Observations per trajectory, ``frameskip`` steps apart."""
    perturb_frame: int = 4
    """Index of the first perturbed observation."""
    colour_change: str = "object"
    """``object``: the object the teleport moves (agent, block, cube) is repainted in a far-away colour,
    as in the paper; ``frame``: the whole frame's RGB channels are rotated (a much larger change)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.colour_change not in COLOUR_CHANGES:
            raise ValueError(f"VoEConfig.colour_change must be one of {COLOUR_CHANGES}; got {self.colour_change!r}")


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


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Sizes of the model diagnostics (:mod:`lewm_bench.analysis.diagnostics`)."""

    clips: int = 200
    """Held-out clips for the open-loop error (each: the model's history plus the planning horizon)."""
    tasks: int = 20
    """Evaluation tasks (the first of the protocol's held-out start/goal pairs) for the plan ranks."""
    batch: int = 32
    seed: int = 0
