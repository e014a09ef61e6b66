"""The one action codec: env actions <-> z-scored action blocks, used by the clip loader and the MPC loop.

A world model sees action *blocks*: ``frameskip`` consecutive env actions, each z-scored with the
training set's per-dimension mean and std, concatenated. A constant action dimension (std below
``MIN_STD``) keeps std 1, so it maps to zero instead of dividing by zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_STD = 1e-6


@dataclass(frozen=True)
class ActionCodec:
    """Maps z-scored action blocks to env actions and back."""

    mean: np.ndarray
    std: np.ndarray
    frameskip: int

    @classmethod
    def from_stats(cls, mean: Any, std: Any, frameskip: int) -> ActionCodec:
        """From per-dimension statistics (a constant dimension keeps std 1)."""
        std = np.asarray(std, np.float64)
        return cls(np.asarray(mean, np.float64), np.where(std > MIN_STD, std, 1.0), frameskip)

    @classmethod
    def from_dataset(cls, ds: Any, frameskip: int) -> ActionCodec:
        """From a dataset's stored action statistics."""
        return cls.from_stats(ds.action_mean, ds.action_std, frameskip)

    @property
    def block_dim(self) -> int:
        """Size of one z-scored action block: ``frameskip`` env actions of ``len(mean)`` dimensions."""
        return self.frameskip * len(self.mean)

    def normalise(self, actions: np.ndarray) -> np.ndarray:
        """(..., A) env actions -> (..., A) z-scored actions (float32)."""
        return ((actions - self.mean) / self.std).astype(np.float32)

    def to_env(self, blocks: np.ndarray) -> np.ndarray:
        """(H, frameskip * A) z-scored blocks -> (H * frameskip, A) env actions clipped to [-1, 1]."""
        steps = blocks.reshape(-1, len(self.mean)) * self.std + self.mean
        return np.clip(steps, -1.0, 1.0).astype(np.float32)

    def to_blocks(self, actions: np.ndarray) -> np.ndarray:
        """(k * frameskip, A) env actions -> (k, frameskip * A) z-scored blocks."""
        return self.normalise(actions).reshape(-1, self.block_dim)
