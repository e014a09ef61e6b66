"""The Cross-Entropy Method (SPEC §6): sample, keep the elites, refit a diagonal Gaussian, repeat."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lewm_bench.planning.base import Planner, episode_noise, tile
from lewm_bench.protocols import WorldModel


@dataclass(frozen=True)
class CEMConfig:
    """Defaults are the paper's and the reference code's."""

    candidates: int = 300
    iterations: int = 30
    elites: int = 30
    init_std: float = 1.0
    """Initial std in z-scored action-block space (mean 0)."""
    horizon: int = 5
    """Action blocks planned per call."""
    bf16: bool = True
    """Run the model under bf16 autocast (costs and the Gaussian are kept in fp32)."""

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.candidates or self.iterations < 1 or self.horizon < 1:
            raise ValueError(f"CEM needs 1 <= elites <= candidates, iterations >= 1, horizon >= 1; got {self}")


class CEM(Planner):
    config: CEMConfig
    keep_candidates: bool = False
    """Keep the last iteration's candidates (B, N, H, A) and their model costs (B, N) in :attr:`last_candidates`
    (for diagnostics: how the true simulator ranks what the model chose)."""
    last_candidates: tuple[Tensor, Tensor] | None = None

    def __init__(self, config: CEMConfig = CEMConfig()) -> None:
        super().__init__(config)

    def optimize(self, model: WorldModel, history: Tensor, past_actions: Tensor, goal: Tensor,
                 generators: list[torch.Generator] | None) -> tuple[Tensor, Tensor]:
        cfg = self.config
        b, a = history.shape[0], past_actions.shape[-1]
        device = history.device
        mean = torch.zeros(b, cfg.horizon, a, device=device)
        std = torch.full((b, cfg.horizon, a), cfg.init_std, device=device)
        trace = []
        n = cfg.candidates
        history, past_actions, goal = tile(history, n), tile(past_actions, n), tile(goal, n)
        with torch.no_grad():
            rollout = self.cost_function(model, history, past_actions, goal, (b, n, cfg.horizon, a))
            for _ in range(cfg.iterations):
                noise = episode_noise(b, (cfg.candidates, cfg.horizon, a), generators, device)
                plans = mean[:, None] + std[:, None] * noise  # (B, N, H, A)
                plans[:, 0] = mean  # the current mean is always a candidate
                cost = rollout(plans)  # (B, N)
                best_cost, idx = cost.topk(cfg.elites, dim=1, largest=False)
                elites = plans.gather(1, idx[:, :, None, None].expand(-1, -1, cfg.horizon, a))
                mean, std = elites.mean(1), elites.std(1)
                trace.append(best_cost[:, 0])
            if self.keep_candidates:
                self.last_candidates = (plans, cost.clone())  # a replayed graph's costs are overwritten next call
        return mean, torch.stack(trace)

