"""Reward-free data-collection policies: one scripted collector per environment plus uniform random.

A collector is a frozen config dataclass (its fields are the parameters recorded in the dataset)
whose :meth:`policy` makes a fresh stateful :class:`Policy` for one worker. Every random draw goes
through the ``rng`` handed to ``reset``/``act``, seeded per episode, so an episode's content depends
only on the dataset seed and the episode index.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lewm_bench.collect.base import CollectorConfig, Policy
from lewm_bench.envs import GoalEnv, env_spec
from lewm_bench.envs import two_room as tr


# ------------------------------------------------------------------------------------ random
@dataclass(frozen=True)
class RandomCollector(CollectorConfig):
    """Uniform random actions in [-1, 1]^d."""

    name: ClassVar[str] = "random"
    envs: ClassVar[tuple[str, ...] | None] = None

    def policy(self) -> Policy:
        return _RandomPolicy()


class _RandomPolicy:
    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        pass

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, env.action_dim).astype(np.float32)


# ---------------------------------------------------------------------------------- Two-Room
@dataclass(frozen=True)
class TwoRoomExpert(CollectorConfig):
    """Noisy scripted expert: to the door, then to a random target in the *other* room.

    Switches from the door to the target once within ``switch_radius`` of the door centre or past
    the wall; stops within ``stop_radius`` of the target. Action = unit direction + Gaussian noise
    (``noise_std`` 2.0 as in the reference collector, which gives the diverse data planning needs),
    clipped, and held for ``action_repeat`` steps.
    """

    name: ClassVar[str] = "expert"
    envs: ClassVar[tuple[str, ...]] = ("two-room",)
    noise_std: float = 2.0
    action_repeat: int = 1
    switch_radius: float = 2.0
    stop_radius: float = 3.0
    target_margin: float = 2.0

    def __post_init__(self) -> None:
        if self.noise_std < 0 or self.action_repeat < 1:
            raise ValueError(f"TwoRoomExpert needs noise_std >= 0 and action_repeat >= 1; got {self}")

    def policy(self) -> Policy:
        return _TwoRoomExpertPolicy(self)


class _TwoRoomExpertPolicy:
    def __init__(self, cfg: TwoRoomExpert) -> None:
        self.cfg = cfg
        self.target = np.zeros(2)
        self.through_door = False
        self._action = np.zeros(2, np.float32)
        self._held = 0

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        start_room = tr.room_of(env.get_state()[0])
        self.target_room = 1 - start_room
        self.target = tr.sample_room_position(rng, self.target_room, self.cfg.target_margin)
        self.through_door = False
        self._held = 0

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray | None:
        pos = env.get_state()
        if np.linalg.norm(pos - self.target) < self.cfg.stop_radius:
            return None
        if not self.through_door:
            past_wall = (pos[0] > tr.WALL_X_HI) if self.target_room == 1 else (pos[0] < tr.WALL_X_LO)
            near_door = np.linalg.norm(pos - tr.DOOR_CENTRE) < self.cfg.switch_radius
            self.through_door = bool(past_wall or near_door)
        if self._held == 0:
            waypoint = self.target if self.through_door else tr.DOOR_CENTRE
            direction = waypoint - pos
            direction = direction / max(np.linalg.norm(direction), 1e-8)
            noisy = direction + rng.normal(0.0, self.cfg.noise_std, 2)
            self._action = np.clip(noisy, -1.0, 1.0).astype(np.float32)
        self._held = (self._held + 1) % self.cfg.action_repeat
        return self._action


# ------------------------------------------------------------------------------------- PushT
@dataclass(frozen=True)
class PushTPusher(CollectorConfig):
    """Scripted pusher with noise, mixed with a near-block random mode for coverage.

    Each episode is in *push* mode with probability ``1 - random_fraction``: the pusher picks a
    random destination for the block, goes round the block to the contact point behind it and
    pushes along the line; a new destination is drawn when the block arrives or after
    ``push_patience`` steps. In *near-block random* mode the agent chases random points within
    ``random_radius`` px of the block, redrawn every ``random_hold`` steps, so contacts from every
    side occur. Both add Gaussian action noise ``noise_std`` and cap the action norm at ``max_action``.
    """

    name: ClassVar[str] = "pusher"
    envs: ClassVar[tuple[str, ...]] = ("pusht",)
    random_fraction: float = 0.5
    noise_std: float = 0.3
    max_action: float = 0.6
    contact_offset: float = 75.0
    push_patience: int = 40
    random_radius: float = 90.0
    random_hold: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ValueError(f"PushTPusher.random_fraction must be in [0, 1]; got {self.random_fraction}")

    def policy(self) -> Policy:
        return _PushTPusherPolicy(self)


class _PushTPusherPolicy:
    def __init__(self, cfg: PushTPusher) -> None:
        self.cfg = cfg

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        self.random_mode = bool(rng.random() < self.cfg.random_fraction)
        self.point = np.zeros(2)
        self.steps = 0
        self.destination = rng.uniform(100.0, 412.0, 2)

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        s = env.get_state()
        agent, block = s[:2], s[2:4]
        cfg = self.cfg
        if self.random_mode:
            if self.steps % cfg.random_hold == 0:
                r = cfg.random_radius * np.sqrt(rng.random())
                phi = rng.uniform(0, 2 * np.pi)
                self.point = block + r * np.array([np.cos(phi), np.sin(phi)])
            waypoint = self.point
        else:
            if np.linalg.norm(block - self.destination) < 20.0 or self.steps >= cfg.push_patience:
                self.destination = rng.uniform(100.0, 412.0, 2)
                self.steps = 0
            direction = self.destination - block
            direction /= max(np.linalg.norm(direction), 1e-8)
            contact = block - cfg.contact_offset * direction
            to_contact = contact - agent
            if np.linalg.norm(to_contact) < 25.0:
                waypoint = block + 40.0 * direction  # in position: push through the block
            else:
                # go round the block: if the straight path passes near it, aim at a point beside it
                t = np.clip(np.dot(block - agent, to_contact) / max(np.dot(to_contact, to_contact), 1e-8), 0, 1)
                closest = agent + t * to_contact
                if np.linalg.norm(block - closest) < cfg.contact_offset * 0.9:
                    side = np.array([-direction[1], direction[0]])
                    side = side if np.dot(agent - block, side) >= 0 else -side
                    waypoint = block + 1.3 * cfg.contact_offset * side - 0.5 * cfg.contact_offset * direction
                else:
                    waypoint = contact
        self.steps += 1
        action = (waypoint - agent) / 100.0
        norm = np.linalg.norm(action)
        if norm > cfg.max_action:
            action *= cfg.max_action / norm
        action = action + rng.normal(0.0, cfg.noise_std, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


# -------------------------------------------------------------------------------------- Cube
@dataclass(frozen=True)
class CubeOracle(CollectorConfig):
    """OGBench's scripted Markov oracle (pick the cube, place it at a random target, repeat) with noise.

    ``noise_std`` is the std of temporally smoothed Gaussian action noise
    (``eps_t = smoothing * eps_{t-1} + (1 - smoothing) * N(0, noise_std^2) * k``, normalised so
    its stationary std is ``noise_std``); ``min_norm`` is the oracle's own parameter.
    """

    name: ClassVar[str] = "oracle"
    envs: ClassVar[tuple[str, ...]] = ("cube",)
    noise_std: float = 0.1
    noise_smoothing: float = 0.5
    min_norm: float = 0.4

    def policy(self) -> Policy:
        return _CubeOraclePolicy(self)


class _CubeOraclePolicy:
    def __init__(self, cfg: CubeOracle) -> None:
        self.cfg = cfg
        self.oracle: Any = None

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

        # The oracle draws its rest pose from numpy's global generator: seed it from the episode rng.
        np.random.seed(int(rng.integers(2**31)))
        self.oracle = CubeMarkovOracle(env=env.oracle_env, min_norm=self.cfg.min_norm)  # type: ignore[attr-defined]
        self.oracle.reset(None, env.oracle_info())  # type: ignore[attr-defined]
        self.eps = np.zeros(env.action_dim)

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        if self.oracle.done:
            env.new_target()  # type: ignore[attr-defined]
            self.oracle.reset(None, env.oracle_info())  # type: ignore[attr-defined]
        action = np.asarray(self.oracle.select_action(None, env.oracle_info()), dtype=np.float64)  # type: ignore[attr-defined]
        a = self.cfg.noise_smoothing
        scale = self.cfg.noise_std * np.sqrt((1 + a) / (1 - a)) if a < 1 else 0.0
        self.eps = a * self.eps + (1 - a) * scale * rng.normal(size=action.shape)
        return np.clip(action + self.eps, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------- registry
from lewm_bench.collect.pusht_expert import PushTExpert  # noqa: E402  (kept below the scripted collectors)
from lewm_bench.collect.sb3 import SACExpert, SB3Collector  # noqa: E402

COLLECTORS: tuple[type[CollectorConfig], ...] = (RandomCollector, TwoRoomExpert, PushTExpert, PushTPusher, CubeOracle,
                                                 SB3Collector, SACExpert)
"""Every collector; a name is unique among those that support one env (``expert`` is Two-Room's and PushT's)."""


def make_collector(env: str, name: str | None = None, **params: Any) -> CollectorConfig:
    """The collector config for ``env`` (its spec's default collector when ``name`` is None).

    ``name`` may be ``sb3:PATH``: collect with the saved stable-baselines3 model at ``PATH``.
    """
    name = env_spec(env).collector if name is None else name
    if name.startswith("sb3:"):
        name, params = "sb3", {**params, "path": name.removeprefix("sb3:")}
    valid = {c.name: c for c in COLLECTORS if c.supports(env)}
    if name not in valid:
        raise ValueError(f"unknown collector {name!r} for env {env!r}; valid collectors: "
                         f"{', '.join(v if v != 'sb3' else 'sb3:PATH' for v in valid)}")
    cls = valid[name]
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(params) - fields
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)} for collector {name!r}; valid: {sorted(fields)}")
    if "env" in fields:
        params = {"env": env, **params}
    return cls(**params)
