"""The oracle row: the protocol's CEM planner over the true simulator instead of a learned world model.

Each planning call samples candidate sequences of ``horizon`` action blocks exactly as CEM does for
a world model (a diagonal Gaussian in the z-scored block space of the evaluation's action codec,
the current mean always a candidate, the elites refit it), but scores each candidate by rolling it
out in the agent's own copy of the env from the episode's current physical state (physics only,
nothing rendered) and taking how far the state it reaches is from passing the success test for the goal
state (:meth:`GoalEnv.goal_cost`: the test's distance, and on PushT also the block angle the test checks;
before ac8167b PushT's cost was the position error alone, blind to the angle). It executes the first
``receding_horizon`` blocks, like the world models, with the same candidates, iterations, elites, horizon
and budget (the profile's).

It is the ceiling this protocol allows a planner of that size: a task the oracle fails is not a test
of the world model (too far for the horizon, or a goal CEM's terminal cost cannot find). It uses the
privileged state and the simulator, and no data, and its results say so (inputs ``privileged
state``). Its time per decision is one whole CEM solve in the simulator: candidates x iterations x
horizon x frameskip env steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewm_bench.data.actions import ActionCodec
from lewm_bench.planning.cem import CEMConfig
from lewm_bench.registry import register_agent


@register_agent("oracle")
class SimulatorOracle:
    """CEM over a copy of the true simulator; cost: how far from passing the success test (``GoalEnv.goal_cost``)."""

    kind = "policy"
    observes = "state"
    plans_in_simulator = True
    display_name, colour, in_grid, order = "Oracle (simulator)", "k", True, 950
    # a solve is candidates x iterations x horizon x frameskip simulator steps; at the cpu profile on the AVX-512
    # EPYC (results/oracle-cpu-avx512): Two-Room 0.10 s, Reacher 0.25 s, PushT 4.5 s, Cube 37 s (about an hour for
    # its 50 tasks), so Cube is opt-in (--agents oracle --envs cube)
    grid_envs: tuple[str, ...] = ("two-room", "pusht", "reacher")

    def __init__(self, env: str, env_kwargs: dict[str, Any], codec: ActionCodec, cem: CEMConfig,
                 receding_horizon: int, seed: int) -> None:
        from lewm_bench.envs import make_env

        self.sim = make_env(env, **env_kwargs)  # the episode's env settings; only its physics is used
        self.codec, self.cem, self.receding_horizon = codec, cem, receding_horizon
        self.rng = np.random.default_rng(seed)

    def act(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """The first ``receding_horizon`` blocks of CEM's plan, as (receding_horizon * frameskip, A) env actions."""
        cfg, block_dim = self.cem, self.codec.block_dim
        mean = np.zeros((cfg.horizon, block_dim))
        std = np.full((cfg.horizon, block_dim), cfg.init_std)
        for _ in range(cfg.iterations):
            plans = mean + std * self.rng.standard_normal((cfg.candidates, cfg.horizon, block_dim))
            plans[0] = mean  # the current mean is always a candidate
            steps = self.codec.to_env(plans).reshape(cfg.candidates, -1, len(self.codec.mean))  # all at once
            cost = np.array([self.sim.goal_cost(self.sim.simulate(state, seq), goal_state) for seq in steps])
            elites = plans[np.argsort(cost, kind="stable")[:cfg.elites]]
            mean, std = elites.mean(0), elites.std(0, ddof=1) if cfg.elites > 1 else np.zeros_like(mean)
        return self.codec.to_env(mean[:self.receding_horizon])

