"""A minimal out-of-tree world model for lewm-bench: the template for "Add your own agent".

Encoder: 8 x 8 average-pooled pixels -> linear -> 32-d embedding. Predictor: an MLP on
(embedding, action block) -> next embedding, Markov (history 1). Loss: prediction MSE plus a
variance hinge that keeps the embeddings from collapsing. Registered by the entry point in
``pyproject.toml``; lewm-bench's trainer, CEM planner and evaluation do the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.registry import LossTerms


@dataclass(frozen=True)
class TinyConfig:
    width: int = 32
    hidden: int = 128
    history: int = 1
    """Frames of context (required field: the trainer cuts clips of history + 1 frames)."""
    variance_weight: float = 1.0


class TinyWorldModel(nn.Module):
    """Tiny MLP world model on pooled pixels (an example plugin)."""

    kind = "world_model"
    config_class = TinyConfig
    loss_terms = ("pred_loss", "variance")

    def __init__(self, config: TinyConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, config.width))
        self.predictor = nn.Sequential(nn.Linear(config.width + action_dim, config.hidden), nn.GELU(),
                                       nn.Linear(config.hidden, config.width))

    presets = {"paper": TinyConfig(), "cpu": TinyConfig(), "smoke": TinyConfig(width=16, hidden=32)}
    """The config per profile (``paper``, ``cpu``, ``smoke``)."""

    history = property(lambda self: self.config.history)
    tokens_per_frame = 1
    encoder_tokens_per_frame = 1

    def encode(self, frames: Tensor) -> Tensor:
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1).float() / 127.5 - 1.0
        return self.encoder(F.adaptive_avg_pool2d(x, 8)).view(b, t, -1)

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        return embeddings + self.predictor(torch.cat([embeddings, actions.to(embeddings.dtype)], -1))

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        z, out = history[:, -1:], []
        for k in range(history.shape[1] - 1, actions.shape[1]):
            z = self.predict(z, actions[:, k:k + 1])
            out.append(z)
        return torch.cat(out, 1)

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        z = self.encode(frames)
        pred_loss = F.mse_loss(self.predict(z[:, :-1], actions), z[:, 1:])
        variance = F.relu(1.0 - z.flatten(0, 1).std(0)).mean()
        return LossTerms(pred_loss + self.config.variance_weight * variance,
                         {"pred_loss": pred_loss, "variance": variance}, z.detach())

    forward = loss
