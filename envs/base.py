"""The contract every lewm-bench environment fulfils, shared by Two-Room, PushT and OGBench-Cube.

The dataset-driven evaluation protocol needs three abilities beyond the Gymnasium API:
set the full physical state from a stored vector (:meth:`GoalEnv.set_state`), render any stored state
as a goal image (:meth:`GoalEnv.render_state`) and decide success against a goal state
(:meth:`GoalEnv.is_success`). This base class implements the Gymnasium plumbing once (spaces, action
validation, ``reset`` options, ``info``), so each environment file holds only its own physics,
sampling, rendering and success test.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lewm_bench.errors import LewmBenchError


class GoalEnv(gym.Env[np.ndarray, np.ndarray]):
    """Pixel-observation, continuous-action environment with settable state and a success test.

    Observations are ``uint8`` RGB images of shape ``(image_size, image_size, 3)``; actions are
    ``float32`` vectors in ``[-1, 1]^action_dim``. The environment is reward-free: the reward is 1.0
    while the success test holds against the goal passed as ``reset(options={"goal_state": g})``
    and 0.0 otherwise (always 0.0 without a goal). It never terminates or truncates by itself: the
    collectors and the evaluation harness set their own step budgets.

    ``reset`` options: ``"state"`` (start from this state instead of a sampled one) and
    ``"goal_state"``. ``info`` holds ``"state"`` (the physical state after the step) and
    ``"is_success"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    #: Dimension of the action vector.
    action_dim: ClassVar[int]
    #: Dimension of the physical state vector (see each environment's docstring).
    state_dim: ClassVar[int]
    #: Most simulators the evaluation keeps open at once (None: one per episode, all at once).
    max_parallel: ClassVar[int | None] = None
    #: RGB (0-255) of the object that :meth:`teleport` moves (agent, block or cube) as rendered by default.
    object_colour: ClassVar[tuple[int, int, int]]

    def __init__(self, image_size: int, render_mode: str | None = "rgb_array") -> None:
        if not isinstance(image_size, (int, np.integer)) or image_size < 8:
            raise ValueError(f"image_size must be an integer >= 8 (224 for the paper, 32-64 on CPU); "
                             f"got {image_size!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None; got {render_mode!r}")
        self.image_size = int(image_size)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self._goal_state: np.ndarray | None = None
        self._object_rgb: tuple[int, int, int] | None = None

    # ----------------------------------------------------------------- per-environment hooks
    def get_state(self) -> np.ndarray:
        """The full physical state as a float64 vector of length ``state_dim``."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_state() -> np.ndarray")

    def _set_state(self, state: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _set_state(state: np.ndarray) -> None")

    def _sample_state(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample_state() -> np.ndarray")

    def _simulate(self, action: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _simulate(action: np.ndarray) -> None")

    def _render(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _render() -> np.ndarray")

    @staticmethod
    def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Whether ``state`` satisfies the environment's success test for ``goal_state``."""
        raise NotImplementedError("GoalEnv subclasses must implement is_success(state, goal_state) -> bool")

    @staticmethod
    def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
        """The distance the success test thresholds (units of the environment)."""
        raise NotImplementedError("GoalEnv subclasses must implement distance(state, goal_state) -> float")

    @classmethod
    def goal_cost(cls, state: np.ndarray, goal_state: np.ndarray) -> float:
        """How far ``state`` is from passing the success test for ``goal_state``, in the units of :meth:`distance`:
        what the oracle minimises and what the diagnostics rank plans by. By default the distance; an env whose
        test has more conditions than the distance (PushT's block angle) overrides it so that every condition
        counts, and a state that passes scores below one that fails."""
        return cls.distance(state, goal_state)

    def _reset_simulator(self, start: np.ndarray | None) -> None:
        """Rebuild simulator objects at the start of an episode (default: nothing to rebuild).

        ``start`` is the state the episode will start from, or ``None`` when :meth:`_sample_state`
        will draw it. With a given start, nothing the simulator keeps across its reset (contact
        caches, solver warm starts, its own random generator) may depend on this env's history or
        on OS entropy: rebuild it in a fixed configuration, so the start state and the actions alone
        determine the episode, in any process and after any earlier use of the env.
        """

    # ------------------------------------------------- physical-understanding analyses (SPEC §7)
    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``state`` with the agent (or the manipulated object) jumped to a random valid place.

        Draws that would be impossible (inside a wall, overlapping another body, too small a jump
        to see) are redrawn, never applied.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement teleport(state, rng) -> np.ndarray")

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Named physical quantities of ``state`` that probes try to read from embeddings."""
        raise NotImplementedError(f"{type(self).__name__} must implement physical_quantities(state) -> dict")

    def recolour(self, rgb: tuple[int, int, int] | None) -> None:
        """Render the object that :meth:`teleport` moves in ``rgb`` (0-255) from the next frame on;
        ``None`` (and every ``reset``) restores :attr:`object_colour`. The physics is untouched."""
        if rgb is not None:
            arr = np.asarray(rgb)
            if arr.shape != (3,) or not np.all((arr >= 0) & (arr <= 255)):
                raise ValueError(f"{type(self).__name__}.recolour: expected an RGB triple in 0-255 or None; "
                                 f"got {rgb!r}")
            rgb = (int(arr[0]), int(arr[1]), int(arr[2]))
        self._object_rgb = rgb

    @property
    def rendered_object_colour(self) -> tuple[int, int, int]:
        """The object's colour in the next rendered frame (see :meth:`recolour`)."""
        return self.object_colour if self._object_rgb is None else self._object_rgb

    def _redraw(self, draw, valid, what: str, tries: int = 1000) -> np.ndarray:
        """The first of ``draw()`` that is ``valid``; an error after ``tries`` impossible draws."""
        for _ in range(tries):
            candidate = draw()
            if valid(candidate):
                return candidate
        raise LewmBenchError(f"{type(self).__name__}: no valid {what} in {tries} draws; the state leaves no room "
                             "for one (choose other trajectories)")

    # ----------------------------------------------------------------------- public contract
    def set_state(self, state: np.ndarray) -> None:
        """Set the full physical state exactly (as stored in a dataset's ``states`` column)."""
        self._set_state(self._check_state(state))

    def simulate(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The physical state reached from ``state`` after ``actions`` (T, action_dim), physics only (nothing is
        rendered); the env is left in that state. A planner over the true simulator (``oracle``) calls it."""
        steps = np.asarray(actions, dtype=np.float64)
        if steps.ndim != 2 or steps.shape[1] != self.action_dim or not np.all(np.isfinite(steps)):
            raise ValueError(f"{type(self).__name__}.simulate: actions must be a finite (T, {self.action_dim}) array; "
                             f"got shape {steps.shape}")
        self._set_state(self._check_state(state))
        for action in np.clip(steps, -1.0, 1.0):  # checked once for the sequence, not per step
            self._simulate(action)
        return self.get_state()

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """Render ``state`` as an observation (e.g. a goal image) without changing the current state."""
        current = self.get_state()
        self._set_state(self._check_state(state))
        try:
            return self._render()
        finally:
            self._set_state(current)

    @property
    def goal_state(self) -> np.ndarray | None:
        """The goal given at ``reset`` (``None`` when there is none)."""
        return None if self._goal_state is None else self._goal_state.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"state", "goal_state"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'state' and/or 'goal_state'")
        start = options.get("state")
        start = None if start is None else self._check_state(start)
        self._reset_simulator(start)
        self._object_rgb = None
        self._set_state(self._sample_state() if start is None else start)
        goal = options.get("goal_state")
        self._goal_state = None if goal is None else self._check_state(goal)
        return self._render(), self._info()

    def step(self, action: np.ndarray):
        info = self.step_unrendered(action)
        return self._render(), float(info["is_success"]), False, False, info

    def step_unrendered(self, action: np.ndarray) -> dict[str, Any]:
        """:meth:`step` without rendering the observation: the same physics, and the ``info`` ``step`` returns.
        For a caller that looks at few of the frames (the evaluation renders only the ones a planner or policy
        sees: one in 25 env steps with the paper's frameskip and receding horizon)."""
        self._simulate(self._check_action(action))
        return self._info()

    def render(self) -> np.ndarray | None:
        return None if self.render_mode is None else self._render()

    # ------------------------------------------------------------------------------ helpers
    def _info(self) -> dict[str, Any]:
        state = self.get_state()
        success = self._goal_state is not None and bool(self.is_success(state, self._goal_state))
        return {"state": state, "is_success": success}

    def _check_action(self, action: Any) -> np.ndarray:
        arr = np.asarray(action)
        if arr.dtype.kind not in "fiu":
            raise TypeError(
                f"{type(self).__name__}: action must be a real numeric array of shape ({self.action_dim},); "
                f"got dtype {arr.dtype}. Pass e.g. np.zeros({self.action_dim}, dtype=np.float32)."
            )
        if arr.shape != (self.action_dim,):
            raise ValueError(
                f"{type(self).__name__}: action must have shape ({self.action_dim},); got shape {arr.shape}. "
                "Step one environment with one action (use a vector env for batches)."
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{type(self).__name__}: action must be finite; got {arr.tolist()}")
        return np.clip(arr.astype(np.float64), -1.0, 1.0)

    def _check_state(self, state: Any) -> np.ndarray:
        arr = np.asarray(state, dtype=np.float64)
        if arr.shape != (self.state_dim,):
            raise ValueError(
                f"{type(self).__name__}: state must have shape ({self.state_dim},); got shape {arr.shape}. "
                "Use a state recorded by this environment (info['state'] or a dataset's 'states')."
            )
        return arr.copy()
