"""lewm-bench environments: the table of registered environments and their Gymnasium ids.

Importing this package (``import lewm_bench`` does) registers ``lewm_bench/TwoRoom-v0``,
``lewm_bench/PushT-v0``, ``lewm_bench/Cube-v0`` and ``lewm_bench/Reacher-v0``; each env module imports
pymunk or MuJoCo only when an env is made. Use :func:`make_env` with a short name (``two-room``,
``pusht``, ``cube``, ``reacher``) or ``gymnasium.make`` with the id; :mod:`lewm_bench.envs.goal_view`
gives the goal-conditioned, state-based RL view of any of them. A new environment is one file that
ends with ``register_env(EnvSpec.of(MyEnv, "my-env", data={"paper": DataSizes(...)}))`` and, for a
built-in, one import line below.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import gymnasium as gym

from lewm_bench.envs.base import GoalEnv
from lewm_bench.envs.spec import _ENVS, DataSizes, EnvSpec, env_names, env_spec, register_env, unregister_env

ENVS: MappingProxyType[str, EnvSpec] = MappingProxyType(_ENVS)
"""Every registered environment by short name (a live, read-only view)."""


def make_env(name: str, **kwargs: Any) -> GoalEnv:
    """Make an environment by short name or id (no wrappers), e.g. ``make_env("two-room", image_size=64)``."""
    env = gym.make(env_spec(name).gym_id, **kwargs).unwrapped
    if not isinstance(env, GoalEnv):
        raise TypeError(f"{name}: expected a lewm_bench.envs.GoalEnv, got {type(env).__name__}")
    return env


# The built-in environments: one line each (their modules register themselves).
from lewm_bench.envs import two_room  # noqa: E402, F401, I001
from lewm_bench.envs import pusht  # noqa: E402, F401
from lewm_bench.envs import cube  # noqa: E402, F401
from lewm_bench.envs import reacher  # noqa: E402, F401
from lewm_bench.envs.goal_view import GoalView, make_goal_env  # noqa: E402

__all__ = ["ENVS", "DataSizes", "EnvSpec", "GoalEnv", "GoalView", "env_names", "env_spec", "make_env", "make_goal_env",
           "register_env", "unregister_env"]
