"""DINO-WM + proprio (the paper's variant, reported for Two-Room and PushT): DINO-WM-style with the
proprioceptive state embedded and concatenated to every patch token, as DINO-WM does.

Everything of :mod:`lewm_bench.baselines.dinowm` (frozen patch encoder, predictor, training recipe)
plus, per frame, the env's proprioceptive state (:attr:`lewm_bench.envs.spec.EnvSpec.proprio`:
Two-Room the agent position; PushT agent position and velocity; Cube the arm's joint positions and
velocities), z-scored with the training split's statistics (stable-worldmodel's column normaliser)
and embedded to 10 dimensions by a linear map (DINO-WM's kernel-1 Conv1d). The embedding is tiled
over the frame's patches and concatenated to each token after the visual slots and before the action
slots: 384 + 10 + 10 = 404 predictor input width. The predictor predicts the visual and proprio
slots of the next frame; the loss is their MSE against the (detached) next-frame tokens, as DINO-WM's
``z_loss`` and stable-worldmodel's actionless loss. Planning cost, stable-worldmodel's
``goal_mse_pixels_proprio``: mean squared error of the predicted proprio embedding (taken from the
first patch; all patches carry it) against the goal state's proprio embedding, plus the mean squared
error over all patches of the visual slots against the goal frame's, each weight 1.

The harness gives physical states only to agents that declare ``uses_proprio = True`` (see
:func:`lewm_bench.protocols.proprio_kwargs`); every other agent is called as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.baselines.dinowm import DinoWM, DinoWMConfig
from lewm_bench.registry import LossTerms, register_agent

if TYPE_CHECKING:
    from lewm_bench.data.clips import ClipDataset


@dataclass(frozen=True)
class DinoWMProprioConfig(DinoWMConfig):
    """DINO-WM's configuration plus the width of the proprio embedding (10, as DINO-WM's)."""

    proprio_embed_dim: int = 10


def with_proprio(config: DinoWMConfig) -> DinoWMProprioConfig:
    """The DINO-WM preset ``config`` with the default proprio embedding."""
    return DinoWMProprioConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


PRESETS: MappingProxyType[str, DinoWMProprioConfig] = MappingProxyType(
    {name: with_proprio(cfg) for name, cfg in DinoWM.presets.items()})


@register_agent("dinowm-proprio")
class DinoWMProprio(DinoWM):
    """DINO-WM + proprio: DINO-WM-style with the proprioceptive state embedded into every patch token."""

    config_class = DinoWMProprioConfig
    presets = PRESETS
    # Not in the default grid: the registry cannot restrict an agent to some envs (the paper reports this
    # variant for Two-Room and PushT only), and the analyses and the planning-speed benchmark feed frames
    # only. Run it with --agents dinowm-proprio.
    display_name, colour, in_grid, order = "DINO-WM + proprio", "C8", False, 3
    loss_terms = ("pred_loss", "visual_loss", "proprio_loss")
    uses_proprio = True

    def __init__(self, config: DinoWMProprioConfig, image_size: int, action_dim: int,
                 proprio: tuple[int, ...] = ()) -> None:
        if not proprio:
            raise ValueError("dinowm-proprio needs proprio: the env's proprioceptive state indices "
                             "(EnvSpec.proprio; the registry's AgentInfo.build passes them)")
        super().__init__(config, image_size, action_dim)
        k = len(proprio)
        self.register_buffer("proprio_index", torch.tensor(proprio, dtype=torch.long))
        self.register_buffer("proprio_mean", torch.zeros(k))
        self.register_buffer("proprio_std", torch.ones(k))
        self.proprio_encoder = nn.Linear(k, config.proprio_embed_dim)  # DINO-WM's kernel-1 Conv1d

    @staticmethod
    def token_width(config: DinoWMConfig) -> int:
        return config.encoder.width + getattr(config, "proprio_embed_dim", 0)

    @property
    def embed_dim(self) -> int:
        return self.token_width(self.config)

    def proprio(self, states: Tensor) -> Tensor:
        """Physical states (..., state_dim) -> z-scored proprioceptive state (..., k)."""
        x = states.float().index_select(-1, self.proprio_index)
        return (x - self.proprio_mean) / self.proprio_std

    def encode(self, frames: Tensor, states: Tensor | None = None) -> Tensor:
        """Frames (B, T, 3, H, W) and their states (B, T, state_dim) -> tokens (B, T, P, D + proprio_embed_dim).

        The visual slots come from the frozen encoder (no gradient); the proprio slots from the
        trainable proprio encoder, the same for every patch of a frame.
        """
        if states is None or states.shape[:2] != frames.shape[:2]:
            raise ValueError(f"dinowm-proprio encodes frames with their states (B, T, state_dim); got frames "
                             f"{tuple(frames.shape)} and states {None if states is None else tuple(states.shape)}")
        visual = super().encode(frames)
        p = self.proprio_encoder(self.proprio(states))[:, :, None].expand(-1, -1, visual.shape[2], -1)
        return torch.cat([visual, p.to(visual.dtype)], -1)

    def planning_cost(self, predicted: Tensor, goal: Tensor) -> Tensor:
        """goal_mse_pixels_proprio: proprio-embedding MSE (first patch) + visual MSE over all patches.

        (N, P, W), (N, P, W) -> (N,).
        """
        d = self.config.encoder.width
        predicted, goal = predicted.float(), goal.float()
        proprio = (predicted[:, 0, d:] - goal[:, 0, d:]).pow(2).mean(-1)
        pixels = (predicted[..., :d] - goal[..., :d]).pow(2).flatten(1).mean(-1)
        return proprio + pixels

    def prepare(self, train_set: ClipDataset, device: torch.device, seed: int, progress: bool = True) -> None:
        """The proprio statistics of the training split (z-scoring), then the frozen encoder as DINO-WM's."""
        x = np.asarray(train_set.frame_states, np.float64)[:, self.proprio_index.cpu().numpy()]
        std = x.std(0)
        self.proprio_mean.copy_(torch.from_numpy(x.mean(0)))
        self.proprio_std.copy_(torch.from_numpy(np.where(std > 1e-8, std, 1.0)))  # a constant column stays 0
        super().prepare(train_set, device, seed, progress)

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None,
             states: Tensor | None = None) -> LossTerms:
        """MSE over the visual and proprio slots against the detached next-frame tokens: frames (B, h+1, ...),
        actions (B, h, A), states (B, h+1, state_dim)."""
        z = self.encode(frames, states)
        pred, target = self.predict(z[:, :-1], actions).float(), z[:, 1:].detach().float()
        d = self.config.encoder.width
        pred_loss = F.mse_loss(pred, target)
        terms = {"pred_loss": pred_loss, "visual_loss": F.mse_loss(pred[..., :d], target[..., :d]).detach(),
                 "proprio_loss": F.mse_loss(pred[..., d:], target[..., d:]).detach()}
        return LossTerms(pred_loss, terms, z)

    forward = loss
