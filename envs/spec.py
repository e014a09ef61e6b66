"""What the suite knows about an environment, derived from its class, and the table of registered ones.

A new environment is one file: a :class:`~lewm_bench.envs.base.GoalEnv` subclass and one line,
``register_env(EnvSpec.of(MyEnv, "my-env"))``. The spec reads the action and state sizes and the
success test from the class; per-profile data sizes default to scaled versions of the ``paper``
sizes (:meth:`EnvSpec.data_for`), so an env needs to say only what differs. Registration also
registers the Gymnasium id, so ``gymnasium.make("lewm_bench/MyEnv-v0")`` works.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import gymnasium as gym

from lewm_bench.errors import LewmBenchError

PROFILE_NAMES = ("paper", "cpu", "smoke")


@dataclass(frozen=True)
class DataSizes:
    """How much reward-free data to collect for one environment at one profile."""

    episodes: int
    """Episodes to collect."""
    max_steps: int
    """Step budget per episode."""
    image_size: int
    """Side of the square RGB frames in pixels."""
    env_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Extra environment arguments (recorded in the dataset), e.g. Cube's ``fast_render``."""
    collector_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Parameters of the env's default collector at this profile (recorded in the dataset), e.g. the
    SAC expert's ``train_steps``."""

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.max_steps < 1 or self.image_size < 8:
            raise ValueError(f"data sizes need episodes >= 1, max_steps >= 1 and image_size >= 8; got {self}")
        object.__setattr__(self, "env_kwargs", MappingProxyType(dict(self.env_kwargs)))
        object.__setattr__(self, "collector_params", MappingProxyType(dict(self.collector_params)))


def scaled_sizes(paper: DataSizes, profile: str) -> DataSizes:
    """The default sizes of ``profile`` for an env that only gives its ``paper`` sizes.

    ``cpu``: at most 2,000 episodes of the paper's length at 64 px; ``smoke``: 8 episodes of at most
    40 steps at 16 px (long enough for the evaluation protocol's goal offset).
    """
    if profile == "paper":
        return paper
    if profile == "cpu":
        return DataSizes(min(paper.episodes, 2_000), paper.max_steps, min(paper.image_size, 64), paper.env_kwargs,
                         paper.collector_params)
    if profile == "smoke":
        return DataSizes(8, min(paper.max_steps, 40), 16, paper.env_kwargs, paper.collector_params)
    raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILE_NAMES)}")


@dataclass(frozen=True)
class EnvSpec:
    """One environment as the suite sees it. Build it with :meth:`of` from the env class."""

    name: str
    """Short name used on the command line (``two-room``)."""
    gym_id: str
    """Registered Gymnasium id (``lewm_bench/TwoRoom-v0``)."""
    entry_point: type
    """The env class (its module imports nothing heavy; pymunk and MuJoCo load when an env is made)."""
    action_dim: int
    state_dim: int
    success: str
    """The success test, in words (the first line of the class's ``is_success`` docstring)."""
    collector: str = "random"
    """Name of the default data collector (see :mod:`lewm_bench.collect.policies`)."""
    data: Mapping[str, DataSizes] = field(default_factory=lambda: MappingProxyType({}))
    """Data sizes per profile; a missing profile is scaled from ``paper`` (:func:`scaled_sizes`)."""
    display_name: str = ""
    """Name in tables and plots (``Two-Room``)."""
    proprio: tuple[int, ...] = ()
    """Indices of the proprioceptive part of the state vector (what the agent knows of its own body),
    given to world models that use proprioception (``uses_proprio``); empty: the env declares none."""

    @classmethod
    def of(cls, env_class: type, name: str, *, version: int = 0, collector: str = "random",
           data: Mapping[str, DataSizes] | None = None, display_name: str | None = None,
           proprio: tuple[int, ...] = ()) -> EnvSpec:
        """The spec of ``env_class`` under the short ``name``; the id is ``lewm_bench/<Class without Env>-v<version>``.

        ``data`` must hold at least ``paper`` (the paper's dataset sizes); ``proprio``: the state
        indices of the proprioceptive state (distinct, each below ``state_dim``).
        """
        data = dict(data or {})
        if "paper" not in data:
            raise ValueError(f"env {name!r}: data must give at least the 'paper' sizes; got {sorted(data)}")
        unknown = sorted(set(data) - set(PROFILE_NAMES))
        if unknown:
            raise ValueError(f"env {name!r}: unknown profiles {unknown}; valid: {', '.join(PROFILE_NAMES)}")
        missing = [a for a in ("action_dim", "state_dim", "is_success") if not hasattr(env_class, a)]
        if missing:
            raise ValueError(f"env {name!r}: {env_class.__qualname__} must define {', '.join(missing)} "
                             "(see lewm_bench.envs.base.GoalEnv)")
        proprio = tuple(int(i) for i in proprio)
        if len(set(proprio)) != len(proprio) or not all(0 <= i < int(env_class.state_dim) for i in proprio):
            raise ValueError(f"env {name!r}: proprio must be distinct state indices in [0, {env_class.state_dim}); "
                             f"got {proprio}")
        stem = env_class.__name__.removesuffix("Env")
        doc = (inspect.getdoc(env_class.is_success) or "").split("\n")[0].rstrip(".")
        return cls(name, f"lewm_bench/{stem}-v{version}", env_class, int(env_class.action_dim),
                   int(env_class.state_dim), doc, collector, MappingProxyType(data), display_name or stem, proprio)

    def data_for(self, profile: str) -> DataSizes:
        """The data sizes of ``profile`` (given, or scaled from ``paper``)."""
        return self.data[profile] if profile in self.data else scaled_sizes(self.data["paper"], profile)


_ENVS: dict[str, EnvSpec] = {}


def register_env(spec: EnvSpec) -> EnvSpec:
    """Add ``spec`` to the table and register its Gymnasium id; the same spec twice is a no-op.

    Raises:
        LewmBenchError: another spec already holds the name.
    """
    old = _ENVS.get(spec.name)
    if old is not None and old != spec:
        raise LewmBenchError(f"env {spec.name!r} is already registered (id {old.gym_id}); choose another name")
    _ENVS[spec.name] = spec
    if spec.gym_id not in gym.registry:
        gym.register(id=spec.gym_id, entry_point=entry_point_string(spec.entry_point), disable_env_checker=True)
    return spec


def entry_point_string(env_class: type) -> str | type:
    """``"module:Class"`` for Gymnasium's registry, as Gymnasium packages register their envs.

    A class that its module name and qualified name do not lead back to (defined in a function, in
    ``exec``'d code, in a test module outside ``sys.modules``) is registered as the class itself.
    """
    found: Any = sys.modules.get(env_class.__module__)
    for part in env_class.__qualname__.split("."):
        found = getattr(found, part, None)
    if found is not env_class:
        return env_class
    return f"{env_class.__module__}:{env_class.__qualname__}"


def unregister_env(name: str) -> None:
    """Remove ``name`` from the table and its id from Gymnasium (for tests and interactive sessions)."""
    spec = _ENVS.pop(name, None)
    if spec is not None:
        gym.registry.pop(spec.gym_id, None)


def env_names() -> tuple[str, ...]:
    """Short names of every registered environment, in registration order."""
    return tuple(_ENVS)


def env_spec(name: str) -> EnvSpec:
    """Look up an environment by short name or Gymnasium id; the error lists the valid names."""
    for spec in _ENVS.values():
        if name in (spec.name, spec.gym_id):
            return spec
    raise LewmBenchError(f"unknown environment {name!r}; valid names: {', '.join(_ENVS)} "
                         f"(or ids {', '.join(s.gym_id for s in _ENVS.values())})")
