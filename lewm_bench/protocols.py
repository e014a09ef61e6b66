"""The contracts between the pieces of the pipeline (typed protocols, not string-keyed dicts)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

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
        """Frames (B, T, 3, H, W) -> embeddings (B, T, ...).

        A model with ``uses_proprio = True`` takes ``encode(frames, states=...)`` with the frames'
        physical states (B, T, state_dim) and embeds their proprioceptive part with the frames
        (see :func:`proprio_kwargs`); no other model is ever given states. On CUDA the planner replays it (and
        :meth:`rollout`) as a captured CUDA graph: no copies between host and device, no reading of values on the
        host (:class:`lewm_bench.planning.base.CapturedGraph`).
        """
        ...

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        """Teacher-forced next-embedding predictions for every frame: (B, T, ...), (B, T, A) -> (B, T, ...)."""
        ...

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        """History embeddings (B, h, ...) and action blocks (B, h - 1 + H, A) -> predictions (B, H, ...)."""
        ...


def uses_proprio(model: Any) -> bool:
    """Whether ``model`` declares that it also takes the proprioceptive state (``uses_proprio = True``)."""
    return bool(getattr(model, "uses_proprio", False))


def proprio_kwargs(model: Any, states: Tensor | None) -> dict[str, Tensor]:
    """``{"states": states}`` for a model that uses proprioception, else ``{}`` (every other model is
    called exactly as before). Raises ValueError when such a model is given no states."""
    if not uses_proprio(model):
        return {}
    if states is None:
        raise ValueError(f"{type(model).__name__} uses proprioception: pass the frames' physical states")
    return {"states": states}
