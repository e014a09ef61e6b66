"""lewm-bench environments: registration with Gymnasium and the short-name table.

Importing this package registers ``lewm_bench/TwoRoom-v0``, ``lewm_bench/PushT-v0`` and
``lewm_bench/Cube-v0`` with string entry points, so pymunk and MuJoCo are imported only when the
environment is made. Use :func:`make_env` with a short name (``two-room``, ``pusht``, ``cube``) or
``gymnasium.make`` with the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from lewm_bench.envs.base import GoalEnv


@dataclass(frozen=True)
class EnvInfo:
    """What the suite knows about one environment before making it."""

    name: str
    """Short name used on the command line."""
    gym_id: str
    """Registered Gymnasium id."""
    entry_point: str
    action_dim: int
    state_dim: int
    success: str
    """The success test, in words."""
    default_kwargs: tuple[tuple[str, Any], ...] = ()


ENVS: dict[str, EnvInfo] = {
    info.name: info
    for info in (
        EnvInfo("two-room", "lewm_bench/TwoRoom-v0", "lewm_bench.envs.two_room:TwoRoomEnv", 2, 2,
                "agent within 4.57 units (of 64) of the goal position"),
        EnvInfo("pusht", "lewm_bench/PushT-v0", "lewm_bench.envs.pusht:PushTEnv", 2, 7,
                "agent+block positions within 20 px (L2) and block angle within pi/9"),
        EnvInfo("cube", "lewm_bench/Cube-v0", "lewm_bench.envs.cube:CubeEnv", 5, 41,
                "cube within 0.04 m of the goal cube position"),
    )
}

for _info in ENVS.values():
    if _info.gym_id not in gym.registry:
        gym.register(id=_info.gym_id, entry_point=_info.entry_point, disable_env_checker=True)


def env_info(name: str) -> EnvInfo:
    """Look up an environment by short name or Gymnasium id; the error lists the valid names."""
    for info in ENVS.values():
        if name in (info.name, info.gym_id):
            return info
    raise ValueError(f"unknown environment {name!r}; valid names: {', '.join(ENVS)} "
                     f"(or ids {', '.join(i.gym_id for i in ENVS.values())})")


def make_env(name: str, **kwargs: Any) -> GoalEnv:
    """Make an environment by short name or id (no wrappers), e.g. ``make_env("two-room", image_size=64)``."""
    env = gym.make(env_info(name).gym_id, **kwargs).unwrapped
    assert isinstance(env, GoalEnv)
    return env


__all__ = ["ENVS", "EnvInfo", "GoalEnv", "env_info", "make_env"]
