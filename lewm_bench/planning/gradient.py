"""Gradient-based planning (SPEC §8 solver ablation): Adam on the action sequence through the model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lewm_bench.planning.base import Planner, episode_noise, rollout_cost
from lewm_bench.protocols import WorldModel


@dataclass(frozen=True)
class GradientConfig:
    iterations: int = 30
    lr: float = 0.1
    horizon: int = 5
    init_std: float = 0.0
    """Std of the random initial plan (0: start from the mean action)."""
    bf16: bool = False
    """Run the model under bf16 autocast."""


class GradientPlanner(Planner):
    config: GradientConfig

    def __init__(self, config: GradientConfig = GradientConfig()) -> None:
        super().__init__(config)

    def optimize(self, model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor,
                 generators: list[torch.Generator] | None) -> tuple[Tensor, Tensor]:
        cfg = self.config
        b, a = history.shape[0], past_actions.shape[-1]
        init = cfg.init_std * episode_noise(b, (1, cfg.horizon, a), generators, history.device)
        plan = init.clone().requires_grad_(True)
        opt = torch.optim.Adam([plan], lr=cfg.lr)
        trace = []
        with torch.enable_grad():
            for _ in range(cfg.iterations):
                # one candidate per episode: the untiled history, actions and goal are already tiled
                cost = rollout_cost(model, history.detach(), past_actions, goal.detach(), plan)  # (B, 1)
                opt.zero_grad()
                cost.sum().backward()
                opt.step()
                trace.append(cost.detach()[:, 0])
        return plan.detach()[:, 0], torch.stack(trace)
