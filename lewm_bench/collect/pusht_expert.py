"""A scripted PushT demonstrator: pushes the T from its pose to random target poses.

What a human demonstrator does, written as geometry. Each step the expert

1. compares the block's pose with the target pose: the translation its centre of gravity still has to
   make and the rotation left (wrapped to [-pi, pi]);
2. scores candidate pushes — points along the T's outline, each pushed along its inward normal — by
   how well the motion a push there would cause matches what is left: a push moves the block along
   the push direction and turns it by the torque of the push about the centre of gravity, so pushes
   through the centre translate and off-centre pushes rotate;
3. goes to the best push's approach point without touching the block (round a circle that clears the
   T when the straight way passes near it), then pushes through the contact point, re-scoring at
   every step and switching push when another one becomes clearly better (the block drifted);
4. draws a new target when the block reaches the current one (position within ``reach_px``, angle
   within ``reach_angle``) or after ``patience`` steps.

Targets are drawn at most ``max_shift`` px and ``max_turn`` rad away from the block's pose so that
several fit in an episode. Gaussian action noise (``noise_std``) and a cap on the action norm make
the demonstrations imperfect the way a human's are. The geometry is gym-pusht's: the T's bar spans
x in [-60, 60], y in [0, 30] of the block's frame and its stem x in [-15, 15], y in [30, 120]; the
block turns about its centre of gravity (0, 45); the agent is a disc of radius 15.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from lewm_bench.collect.base import CollectorConfig, Policy
from lewm_bench.envs import GoalEnv

COG = np.array([0.0, 45.0])
"""The block's centre of gravity in its own frame."""
AGENT_RADIUS = 15.0
CLEAR_RADIUS = 100.0
"""A circle about the centre of gravity that the agent disc can travel on without touching the T
(the T's farthest points are 75 px from its centre of gravity)."""
WORLD_MARGIN = 110.0
"""Targets keep the block's centre of gravity this far from the walls (the world is 512 px): room for the
agent to get behind the T from every side."""


def _edge(a: tuple[float, float], b: tuple[float, float], normal: tuple[float, float], step: float = 7.5,
          inset: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contact points every ``step`` px along the edge a -> b (``inset`` px kept free at both ends)."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    length = float(np.linalg.norm(b_ - a_))
    ts = np.arange(inset, length - inset + 1e-9, step) / length
    return [(a_ + t * (b_ - a_), np.asarray(normal, float)) for t in ts]


# The T's outline with outward normals, in the block's frame; :data:`CONTACTS` keeps the points the
# agent disc can touch from outside (not those in the two concave corners).
_OUTLINE = np.array([
    np.concatenate(pn) for pn in (
        _edge((-60, 0), (60, 0), (0, -1))  # bar, top
        + _edge((-60, 0), (-60, 30), (-1, 0), inset=5) + _edge((60, 0), (60, 30), (1, 0), inset=5)  # bar ends
        + _edge((-60, 30), (-15, 30), (0, 1)) + _edge((15, 30), (60, 30), (0, 1))  # bar, underside
        + _edge((-15, 30), (-15, 120), (-1, 0)) + _edge((15, 30), (15, 120), (1, 0))  # stem sides
        + _edge((-15, 120), (15, 120), (0, 1), inset=3)  # stem end
    )
])



def _reachable(outline: np.ndarray) -> np.ndarray:
    approach = outline[:, :2] + (AGENT_RADIUS + 4.0) * outline[:, 2:]
    return outline[_t_distance(approach, np.zeros(2), 0.0) >= AGENT_RADIUS + 2.0]


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return v @ np.array([[c, s], [-s, c]])


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


@dataclass(frozen=True)
class PushTExpert(CollectorConfig):
    """Scripted demonstrator that pushes the T to random target poses (module docstring)."""

    name: ClassVar[str] = "expert"
    envs: ClassVar[tuple[str, ...]] = ("pusht",)
    noise_std: float = 0.05
    """Std of the Gaussian noise added to every action (actions are in [-1, 1], 100 px per unit)."""
    max_action: float = 0.5
    """Cap on the action norm before the noise (0.5 = a PD target 50 px away)."""
    max_shift: float = 120.0
    """Largest distance (px) between the block's centre of gravity and a new target's."""
    max_turn: float = 1.2
    """Largest rotation (rad) between the block's angle and a new target's."""
    reach_px: float = 12.0
    reach_angle: float = float(np.pi / 18)
    """A target is reached when the centre of gravity is within ``reach_px`` and the angle within this."""
    patience: int = 150
    """Steps after which an unreached target is replaced."""
    turn_scale: float = 0.6
    """Rotation (rad) that counts as much as ``shift_scale`` px of translation when scoring pushes."""
    shift_scale: float = 60.0
    push_depth: float = 25.0
    """How far past the contact point the PD target is put while pushing (px)."""

    def __post_init__(self) -> None:
        if self.noise_std < 0 or not 0 < self.max_action <= 1 or self.patience < 1:
            raise ValueError(f"PushTExpert needs noise_std >= 0, 0 < max_action <= 1, patience >= 1; got {self}")

    def policy(self) -> Policy:
        return PushTExpertPolicy(self)


class PushTExpertPolicy:
    """One worker's stateful demonstrator: :attr:`reached` counts the targets reached in this episode,
    :attr:`expired` those replaced after ``patience`` steps."""

    def __init__(self, cfg: PushTExpert) -> None:
        self.cfg = cfg

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        self.reached, self.expired, self.drawn = 0, 0, 0
        self.push: int | None = None
        self._new_target(env.get_state(), rng)

    # ------------------------------------------------------------------ targets
    def _new_target(self, state: np.ndarray, rng: np.random.Generator) -> None:
        cog = state[2:4] + _rotate(COG, state[4])
        r, phi = self.cfg.max_shift * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        self.target_cog = np.clip(cog + r * np.array([np.cos(phi), np.sin(phi)]), WORLD_MARGIN, 512 - WORLD_MARGIN)
        self.target_angle = float(state[4] + rng.uniform(-self.cfg.max_turn, self.cfg.max_turn))
        self.steps, self.push, self.drawn = 0, None, self.drawn + 1

    def errors(self, state: np.ndarray) -> tuple[np.ndarray, float]:
        """(translation of the centre of gravity still to make (px), rotation still to make (rad))."""
        cog = state[2:4] + _rotate(COG, state[4])
        return self.target_cog - cog, _wrap(self.target_angle - state[4])

    # ------------------------------------------------------------------ pushes
    def _scores(self, state: np.ndarray, shift: np.ndarray, turn: float) -> np.ndarray:
        """How well a push at each contact matches the motion still to make (higher is better)."""
        cfg = self.cfg
        angle = state[4]
        arm = _rotate(CONTACTS[:, :2] - COG, angle)  # contact relative to the centre of gravity, world frame
        push = -_rotate(CONTACTS[:, 2:], angle)  # push direction = inward normal
        torque = (arm[:, 0] * push[:, 1] - arm[:, 1] * push[:, 0]) / 60.0  # rotation it causes, ~[-1, 1]
        want_t = shift / cfg.shift_scale
        want_r = turn / cfg.turn_scale
        size = np.hypot(np.linalg.norm(want_t), want_r)
        if size > 1:
            want_t, want_r = want_t / size, want_r / size
        translation = push @ want_t  # progress along the translation still to make
        return translation + want_r * torque - 0.5 * (torque - want_r) ** 2 * (abs(want_r) < 0.3)

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        cfg = self.cfg
        state = env.get_state()
        shift, turn = self.errors(state)
        if np.linalg.norm(shift) < cfg.reach_px and abs(turn) < cfg.reach_angle:
            self.reached += 1
            self._new_target(state, rng)
            shift, turn = self.errors(state)
        elif self.steps >= cfg.patience:
            self.expired += 1
            self._new_target(state, rng)
            shift, turn = self.errors(state)
        self.steps += 1
        self.remaining = float(np.linalg.norm(shift) + 40.0 * abs(turn))  # slow down close to the target
        scores = self._scores(state, shift, turn)
        best = int(np.argmax(scores))
        if self.push is None or scores[best] > scores[self.push] + 0.15:
            self.push = best
        agent, angle = state[:2], state[4]
        contact = state[2:4] + _rotate(CONTACTS[self.push, :2], angle)
        normal = _rotate(CONTACTS[self.push, 2:], angle)
        waypoint = self._waypoint(agent, state[2:4], angle, contact, normal)
        action = (np.clip(waypoint, AGENT_RADIUS, 512 - AGENT_RADIUS) - agent) / 100.0
        norm = np.linalg.norm(action)
        if norm > cfg.max_action:
            action *= cfg.max_action / norm
        action = action + rng.normal(0.0, cfg.noise_std, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _waypoint(self, agent: np.ndarray, block: np.ndarray, angle: float, contact: np.ndarray,
                  normal: np.ndarray) -> np.ndarray:
        """Where to send the agent: through the contact when lined up behind it, else towards it round the T."""
        offset = agent - contact
        along = float(np.dot(offset, normal))  # height above the contact's edge
        lateral = float(np.linalg.norm(offset - along * normal))
        if 0 < along < AGENT_RADIUS + 12.0 and lateral < 5.0:  # in place: push through the contact
            return contact - min(self.cfg.push_depth, 5.0 + self.remaining) * normal
        approach = contact + (AGENT_RADIUS + 4.0) * normal
        if _clear(agent, approach, block, angle):
            return approach
        pre = contact + (AGENT_RADIUS + 45.0) * normal  # farther out along the normal: reachable from outside
        if _clear(agent, pre, block, angle):
            return pre
        cog = block + _rotate(COG, angle)
        rel_a, rel_t = agent - cog, pre - cog
        a_agent, a_target = np.arctan2(rel_a[1], rel_a[0]), np.arctan2(rel_t[1], rel_t[0])
        a = a_agent + np.clip(_wrap(a_target - a_agent), -0.6, 0.6)
        return cog + CLEAR_RADIUS * np.array([np.cos(a), np.sin(a)])  # round the T on a circle that clears it


def _t_distance(points: np.ndarray, block: np.ndarray, angle: float) -> np.ndarray:
    """Distance (px) from world points (N, 2) to the T at pose (block, angle)."""
    local = _rotate(points - block, -angle)
    out = np.full(len(points), np.inf)
    for x0, x1, y0, y1 in ((-60.0, 60.0, 0.0, 30.0), (-15.0, 15.0, 30.0, 120.0)):
        dx = np.maximum.reduce([x0 - local[:, 0], np.zeros(len(local)), local[:, 0] - x1])
        dy = np.maximum.reduce([y0 - local[:, 1], np.zeros(len(local)), local[:, 1] - y1])
        out = np.minimum(out, np.hypot(dx, dy))
    return out


def _clear(start: np.ndarray, end: np.ndarray, block: np.ndarray, angle: float) -> bool:
    """Whether the agent disc can go straight from ``start`` to ``end`` without touching the T."""
    points = start + np.linspace(0.0, 1.0, 24)[:, None] * (end - start)
    return bool(_t_distance(points, block, angle).min() >= AGENT_RADIUS + 2.0)


CONTACTS = _reachable(_OUTLINE)
"""(K, 4) pushable contacts in the block's frame: x, y, outward normal x, y."""
