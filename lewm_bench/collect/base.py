"""What every data-collection policy is: a frozen config (:class:`CollectorConfig`) that makes a
stateful :class:`Policy` per worker. The collectors themselves are in :mod:`lewm_bench.collect.policies`."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import numpy as np

from lewm_bench.envs import GoalEnv


class Policy(Protocol):
    """What the collection loop calls, once per episode and once per step."""

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None: ...

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray | None:
        """The next action, or None to end the episode early (e.g. the expert reached its target)."""
        ...


class CollectorConfig:
    """Base for collector configs: ``name``, ``envs`` it supports (None: every env), and ``policy()``."""

    name: ClassVar[str]
    envs: ClassVar[tuple[str, ...] | None]

    @classmethod
    def supports(cls, env: str) -> bool:
        return cls.envs is None or env in cls.envs

    def policy(self) -> Policy:
        raise NotImplementedError(f"{type(self).__name__} must implement policy() -> Policy")

    def prepare(self) -> None:
        """One-time work in the collecting process before workers start (e.g. train an expert); default none."""

    def provenance(self) -> dict[str, Any]:
        """What this collector runs with beyond :meth:`params`, once :meth:`prepare` has run (e.g. a trained model's
        SHA-256): recorded in the dataset, checked when a collection resumes, not part of the identity."""
        return {}

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]
