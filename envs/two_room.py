"""Two-Room: 2-D point navigation through a door (PLDM's environment as used by LeWM).

Description:
    A point agent moves in a square arena split into two rooms by a vertical wall with one door.
    Pure numpy: no physics engine; a 64x64 frame renders in well under a millisecond.
    All coordinates are in units of a 64x64 canvas and scale linearly to ``image_size``.

Geometry:
    Border wall 4 units thick on each side, so the agent lives in ``[4, 60]^2``. The dividing
    wall spans ``x in [30.5, 33.5]`` with a door at ``y in [10, 18]``. Image rows follow ``y``
    (row 0 at the top), columns follow ``x``.

Action Space:
    ``Box(-1, 1, (2,), float32)``: a velocity direction, clipped to ``[-1, 1]^2``; the agent moves
    by ``action * SPEED`` (``SPEED`` = 1.43 units, 5 px at 224 px) per step.

Dynamics and collisions:
    Axis-separated: the x-move is applied first and stops at the wall face if it would enter the
    dividing wall outside the door; then the y-move, which inside the door gap is limited to the
    opening; finally the position is clamped to the arena. Motion along a wall therefore slides.

Observation Space:
    ``Box(0, 255, (image_size, image_size, 3), uint8)``: light floor, dark walls, the agent as a red
    Gaussian dot (std 2 units).

State:
    ``(x, y)`` of the agent, float64.

Success:
    Euclidean distance to the goal position ``< SUCCESS_RADIUS`` = 4.57 units (16 px at 224 px).

Starting State:
    Uniform over the free space of both rooms (never inside the door gap), unless
    ``reset(options={"state": ...})`` gives one.

Episode End:
    Never by itself; collectors and evaluation set budgets (wrap with ``TimeLimit`` otherwise).

Arguments:
    ``image_size`` (int, default 64): side of the square observation in pixels.

Version History:
    v0: initial version (lewm-bench 0.1).
"""

from __future__ import annotations

import numpy as np

from lewm_bench.envs.base import GoalEnv
from lewm_bench.envs.spec import DataSizes, EnvSpec, register_env

CANVAS = 64.0
BORDER = 4.0
WALL_X_LO, WALL_X_HI = 30.5, 33.5
DOOR_Y_LO, DOOR_Y_HI = 10.0, 18.0
DOOR_CENTRE = np.array([32.0, 14.0])
SPEED = 1.43
SUCCESS_RADIUS = 4.57
DOT_STD = 2.0

_FLOOR = np.array([232, 232, 226], np.float32)
_WALL = np.array([48, 48, 56], np.float32)


def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    """Euclidean distance between agent and goal position (units of the 64-unit canvas)."""
    return float(np.hypot(state[0] - goal_state[0], state[1] - goal_state[1]))


def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
    """Agent within 4.57 units (of 64) of the goal position."""
    return distance(state, goal_state) < SUCCESS_RADIUS


def room_of(x: float) -> int:
    """0 for the left room, 1 for the right room (positions inside the wall count as the nearer side)."""
    return 0 if x < 0.5 * (WALL_X_LO + WALL_X_HI) else 1


def move(pos: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Apply a displacement with wall collisions (axis-separated, see the module docstring)."""
    x, y = float(pos[0]), float(pos[1])
    nx = x + float(delta[0])
    in_door = DOOR_Y_LO <= y <= DOOR_Y_HI
    if not in_door:
        if x <= WALL_X_LO < nx:
            nx = WALL_X_LO
        elif x >= WALL_X_HI > nx:
            nx = WALL_X_HI
    ny = y + float(delta[1])
    if WALL_X_LO < nx < WALL_X_HI:
        ny = min(max(ny, DOOR_Y_LO), DOOR_Y_HI)
    lo, hi = BORDER, CANVAS - BORDER
    return np.array([min(max(nx, lo), hi), min(max(ny, lo), hi)])


def is_free(pos: np.ndarray) -> bool:
    """True when ``pos`` is inside the arena and not inside the wall (the door counts as free)."""
    x, y = float(pos[0]), float(pos[1])
    inside = BORDER <= x <= CANVAS - BORDER and BORDER <= y <= CANVAS - BORDER
    in_wall = WALL_X_LO < x < WALL_X_HI and not DOOR_Y_LO <= y <= DOOR_Y_HI
    return inside and not in_wall


def sample_room_position(rng: np.random.Generator, room: int, margin: float = 0.0) -> np.ndarray:
    """Uniform position inside one room, at least ``margin`` units from its walls."""
    x_lo, x_hi = (BORDER, WALL_X_LO) if room == 0 else (WALL_X_HI, CANVAS - BORDER)
    lo = np.array([x_lo + margin, BORDER + margin])
    hi = np.array([x_hi - margin, CANVAS - BORDER - margin])
    return rng.uniform(lo, hi)


class TwoRoomEnv(GoalEnv):
    """Two-Room navigation; see the module docstring for the full definition."""

    action_dim = 2
    state_dim = 2
    object_colour = (220, 30, 30)

    def __init__(self, image_size: int = 64, render_mode: str | None = "rgb_array") -> None:
        super().__init__(image_size, render_mode)
        self._scale = self.image_size / CANVAS
        self._background = self._draw_background()
        self._sigma_px = DOT_STD * self._scale
        self._radius_px = int(np.ceil(3.0 * self._sigma_px))
        self._pos = np.array([16.0, 32.0])

    is_success = staticmethod(is_success)
    distance = staticmethod(distance)

    def get_state(self) -> np.ndarray:
        return self._pos.copy()

    def _set_state(self, state: np.ndarray) -> None:
        self._pos = state.copy()

    def _sample_state(self) -> np.ndarray:
        return sample_room_position(self.np_random, int(self.np_random.integers(2)))

    def _simulate(self, action: np.ndarray) -> None:
        self._pos = move(self._pos, action * SPEED)

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The agent jumps to a uniform position in either room, at least 8 units away (never into a wall)."""
        return self._redraw(lambda: sample_room_position(rng, int(rng.integers(2)), margin=1.0),
                            lambda p: is_free(p) and np.hypot(*(p - state[:2])) >= 8.0, "teleport")

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"agent position": np.asarray(state[:2], np.float64)}

    def _draw_background(self) -> np.ndarray:
        n = self.image_size
        centres = (np.arange(n) + 0.5) / self._scale  # pixel centres in canvas units
        border = (centres < BORDER) | (centres > CANVAS - BORDER)
        wall_col = (centres >= WALL_X_LO) & (centres <= WALL_X_HI)
        door_row = (centres >= DOOR_Y_LO) & (centres <= DOOR_Y_HI)
        wall = border[:, None] | border[None, :] | (wall_col[None, :] & ~door_row[:, None])  # (rows=y, cols=x)
        img = np.where(wall[..., None], _WALL, _FLOOR)
        return img.astype(np.uint8)

    def _render(self) -> np.ndarray:
        img = self._background.copy()
        cx, cy = self._pos * self._scale
        r, n = self._radius_px, self.image_size
        x0, x1 = max(int(cx) - r, 0), min(int(cx) + r + 1, n)
        y0, y1 = max(int(cy) - r, 0), min(int(cy) + r + 1, n)
        gx = np.exp(-((np.arange(x0, x1) + 0.5 - cx) ** 2) / (2 * self._sigma_px**2))
        gy = np.exp(-((np.arange(y0, y1) + 0.5 - cy) ** 2) / (2 * self._sigma_px**2))
        alpha = (gy[:, None] * gx[None, :])[..., None]  # (h, w, 1)
        patch = img[y0:y1, x0:x1].astype(np.float32)
        agent = np.asarray(self.rendered_object_colour, np.float32)
        img[y0:y1, x0:x1] = (patch + alpha * (agent - patch) + 0.5).astype(np.uint8)
        return img


# cpu: sized to collect in minutes on 2 cores (README: Benchmarks); smoke: seconds, for tests.
# proprio: the agent position (the whole state), as stable-worldmodel's tworoom ``proprio``.
SPEC = register_env(EnvSpec.of(TwoRoomEnv, "two-room", display_name="Two-Room", collector="expert", proprio=(0, 1),
                              data={
    "paper": DataSizes(10_000, 100, 224),
    "cpu": DataSizes(3_000, 100, 32),
    "smoke": DataSizes(12, 40, 16),
}))
