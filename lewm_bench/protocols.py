"""The contracts between the pieces of the pipeline (typed protocols, not string-keyed dicts)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class WorldModel(Protocol):
    """What a planner needs from a world model: encode frames, roll out embeddings under actions."""

    history: int
    """Frames of context the predictor was trained with (the planner's context is at most this)."""
    tokens_per_frame: int
    """Latent tokens per frame seen by the predictor."""
    encoder_tokens_per_frame: int

    def encode(self, frames: Tensor) -> Tensor:
        """Frames (B, T, 3, H, W) -> embeddings (B, T, ...)."""
        ...

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced next-embedding predictions for every frame: (B, T, ...), (B, T, A) -> (B, T, ...)."""
        ...

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        """History embeddings (B, h, ...) and action blocks (B, h - 1 + H, A) -> predictions (B, H, ...)."""
        ...
