"""The random reference row (SPEC §5.5): uniform actions, no model, no training."""

from __future__ import annotations

import numpy as np

from lewm_bench.registry import register_agent


@register_agent("random")
class RandomAgent:
    """Uniform random actions in [-1, 1]: the floor every table reports."""

    kind = "policy"
    display_name, colour, in_grid, order = "Random", "0.6", True, 1000

    def __init__(self, action_dim: int, seed: int, steps_per_call: int = 25) -> None:
        self.action_dim, self.steps_per_call = action_dim, steps_per_call
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """(steps_per_call, action_dim) actions, ignoring the observation and the goal."""
        return self.rng.uniform(-1, 1, (self.steps_per_call, self.action_dim)).astype(np.float32)
