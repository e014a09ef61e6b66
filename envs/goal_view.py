"""The goal-conditioned RL view of any lewm-bench environment (what SB3's SAC + HER trains on).

Every :class:`~lewm_bench.envs.base.GoalEnv` is pixel-observed and reward-free. :class:`GoalView`
wraps one into the goal-conditioned interface of Gymnasium-Robotics and stable-baselines3:

- observations ``Dict(observation, achieved_goal, desired_goal)``, all three the *privileged*
  physical state (``float32``, length ``state_dim``): the goal is a full goal state, exactly as the
  evaluation protocol's goals are, and the env's success test decides which parts of it matter
  (Two-Room: the position; PushT: agent and block pose; Cube: the cube position; Reacher: the joints);
- ``compute_reward(achieved_goal, desired_goal, info)``, vectorised over leading batch dimensions,
  derived from the env's own ``is_success`` (``reward="sparse"``: SB3's HER convention, **0 on
  success and -1 otherwise**) or from its ``distance`` (``reward="dense"``: minus the distance the
  success test thresholds);
- ``info["is_success"]`` after every step (what SB3's ``EvalCallback`` and ``evaluate_policy`` read);
- episodes truncate after ``max_episode_steps`` (default 50, the protocol's planning budget) and,
  with ``terminate_on_success=True``, terminate on success.

Goals: ``reset`` draws the goal as a start state of the env's own reset distribution (an
independent seeded reset), then draws the start, both from seeds out of the view's generator
(seeded by ``reset(seed=...)``); ``reset(options={"state":
s, "goal_state": g})`` gives both, e.g. the protocol's held-out start/goal pairs. A ``goal_sampler``
callable replaces the draw. Stepping never renders (state-based RL runs at simulator speed);
``render()`` still returns the frame of the current state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lewm_bench.envs.base import GoalEnv
from lewm_bench.errors import LewmBenchError

Reward = Literal["sparse", "dense"]
GoalSampler = Callable[[GoalEnv, np.random.Generator], np.ndarray]
"""``(env, rng) -> goal state``: how a :class:`GoalView` draws the goal of an episode."""

OBS_KEYS = ("observation", "achieved_goal", "desired_goal")


def batched_success(env_class: type[GoalEnv] | GoalEnv, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """The env's ``is_success`` applied row by row over any leading batch shape (a bool array)."""
    a, d = np.asarray(achieved, np.float64), np.asarray(desired, np.float64)
    a, d = np.broadcast_arrays(a, d)
    batch = a.shape[:-1]
    flat_a, flat_d = a.reshape(-1, a.shape[-1]), d.reshape(-1, d.shape[-1])
    out = np.fromiter((env_class.is_success(x, y) for x, y in zip(flat_a, flat_d)), bool, count=len(flat_a))
    return out.reshape(batch)


def batched_distance(env_class: type[GoalEnv] | GoalEnv, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """The env's ``distance`` applied row by row over any leading batch shape (a float array)."""
    a, d = np.broadcast_arrays(np.asarray(achieved, np.float64), np.asarray(desired, np.float64))
    batch = a.shape[:-1]
    flat_a, flat_d = a.reshape(-1, a.shape[-1]), d.reshape(-1, d.shape[-1])
    out = np.fromiter((env_class.distance(x, y) for x, y in zip(flat_a, flat_d)), np.float64, count=len(flat_a))
    return out.reshape(batch)


def reset_distribution_goal(env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
    """A goal state drawn as the env draws its start states (a reset seeded from ``rng``).

    The env is left in the drawn state; :class:`GoalView` resets it to the episode's start next.
    """
    env.reset(seed=int(rng.integers(2**31)))
    return env.get_state()


def draw_goal_keeping_state(env: GoalEnv, rng: np.random.Generator, sampler: GoalSampler | None = None) -> np.ndarray:
    """A goal state from ``sampler`` (default :func:`reset_distribution_goal`); the env returns to its state.

    For collectors that need a new goal in the middle of an episode: the env is reset to the state
    it was in (velocities included), which for PushT and Cube also rebuilds the simulator in its
    fixed configuration, so the episode stays a function of its seed.
    """
    current = env.get_state()
    goal = (sampler or reset_distribution_goal)(env, rng)
    env.reset(options={"state": current})
    return goal


class GoalView(gym.Wrapper):
    """The goal-conditioned, state-based RL view of one lewm-bench environment (see the module docstring).

    Args:
        env: a :class:`GoalEnv` (or a Gymnasium-wrapped one; it is unwrapped).
        max_episode_steps: truncate after this many steps (the protocol's budget is 50).
        reward: ``"sparse"`` (0 on success, -1 otherwise; for HER) or ``"dense"`` (minus the distance).
        terminate_on_success: end the episode (``terminated=True``) when the success test holds.
        goal_sampler: ``(env, rng) -> goal state``; default :func:`reset_distribution_goal`.
    """

    def __init__(self, env: gym.Env, max_episode_steps: int = 50, reward: Reward = "sparse",
                 terminate_on_success: bool = False, goal_sampler: GoalSampler | None = None) -> None:
        inner = env.unwrapped
        if not isinstance(inner, GoalEnv):
            raise LewmBenchError(f"GoalView wraps a lewm_bench GoalEnv; got {type(inner).__name__}. "
                                 "Make one with lewm_bench.envs.make_env(name) or gymnasium.make('lewm_bench/...')")
        if reward not in ("sparse", "dense"):
            raise LewmBenchError(f"GoalView reward must be 'sparse' (0 on success, -1 otherwise) or 'dense' "
                                 f"(minus the distance); got {reward!r}")
        if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
            raise LewmBenchError(f"GoalView max_episode_steps must be an integer >= 1 (50 is the protocol's "
                                 f"budget); got {max_episode_steps!r}")
        super().__init__(inner)
        self.goal_env: GoalEnv = inner
        self.max_episode_steps = int(max_episode_steps)
        self.reward_type: Reward = reward
        self.terminate_on_success = bool(terminate_on_success)
        self.goal_sampler: GoalSampler = goal_sampler or reset_distribution_goal
        box = spaces.Box(-np.inf, np.inf, (inner.state_dim,), np.float32)
        self.observation_space = spaces.Dict({k: box for k in OBS_KEYS})
        self.action_space = inner.action_space
        self._goal = np.zeros(inner.state_dim, np.float32)
        self._steps = 0
        self._goal_rng = np.random.default_rng()

    # -------------------------------------------------------------------------------- HER API
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None) -> np.ndarray:
        """The reward of reaching ``achieved_goal`` for ``desired_goal``, for any batch shape (float32).

        ``sparse``: 0.0 where the env's success test holds, -1.0 elsewhere; ``dense``: minus the env's
        distance. ``info`` is accepted for the Gymnasium-Robotics signature and not used.
        """
        if self.reward_type == "sparse":
            return batched_success(self.goal_env, achieved_goal, desired_goal).astype(np.float32) - 1.0
        return -batched_distance(self.goal_env, achieved_goal, desired_goal).astype(np.float32)

    def compute_terminated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None) -> np.ndarray:
        """Whether the episode terminates (success with ``terminate_on_success``, else never), batched."""
        success = batched_success(self.goal_env, achieved_goal, desired_goal)
        return success & self.terminate_on_success

    def compute_truncated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None) -> np.ndarray:
        """Never truncated by the goal itself (the step limit truncates), batched."""
        return np.zeros(np.broadcast_shapes(np.shape(achieved_goal), np.shape(desired_goal))[:-1], bool)

    @property
    def goal(self) -> np.ndarray:
        """The desired goal state of the current episode."""
        return self._goal.copy()

    # ---------------------------------------------------------------------------- Gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        options = dict(options or {})
        unknown = set(options) - {"state", "goal_state"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'state' and/or 'goal_state'")
        env = self.goal_env
        if seed is not None:
            self._goal_rng = np.random.default_rng(seed)
        goal = options.get("goal_state")
        if goal is None:
            goal = self.goal_sampler(env, self._goal_rng)
        goal = env._check_state(goal)
        start = options.get("state")
        # The start is drawn from a seed out of this view's generator: episodes are a function of the reset seed.
        _, info = env.reset(seed=int(self._goal_rng.integers(2**31)),
                            options={"goal_state": goal} if start is None else {"state": start, "goal_state": goal})
        self._goal = goal.astype(np.float32)
        self._steps = 0
        obs = self._obs(info["state"])
        return obs, self._info(obs, info)

    def step(self, action: np.ndarray):
        env = self.goal_env
        env._simulate(env._check_action(action))  # no rendering: state-based RL
        self._steps += 1
        obs = self._obs(env.get_state())
        info = self._info(obs, {"state": env.get_state()})
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        terminated = bool(self.terminate_on_success and info["is_success"])
        truncated = self._steps >= self.max_episode_steps
        return obs, reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        return self.goal_env.render()

    # ---------------------------------------------------------------------------- helpers
    def _obs(self, state: np.ndarray) -> dict[str, np.ndarray]:
        s = np.asarray(state, np.float32)
        return {"observation": s.copy(), "achieved_goal": s.copy(), "desired_goal": self._goal.copy()}

    def _info(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> dict[str, Any]:
        success = bool(batched_success(self.goal_env, obs["achieved_goal"], obs["desired_goal"]))
        return {"state": info["state"], "is_success": success}


def make_goal_env(name: str, *, max_episode_steps: int = 50, reward: Reward = "sparse",
                  terminate_on_success: bool = False, goal_sampler: GoalSampler | None = None,
                  **env_kwargs: Any) -> GoalView:
    """The goal view of the env ``name`` (short name or id), e.g. ``make_goal_env("two-room", image_size=16)``."""
    from lewm_bench.envs import make_env

    return GoalView(make_env(name, **env_kwargs), max_episode_steps=max_episode_steps, reward=reward,
                    terminate_on_success=terminate_on_success, goal_sampler=goal_sampler)


__all__ = ["GoalSampler", "GoalView", "OBS_KEYS", "batched_distance", "batched_success", "draw_goal_keeping_state",
           "make_goal_env", "reset_distribution_goal"]
