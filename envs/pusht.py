"""PushT: push a T-shaped block with a disc (the diffusion-policy / DINO-WM task as used by LeWM).

Description:
    Wraps the physics of the maintained ``gym-pusht`` package (pymunk, 512x512 world, no gravity,
    disc driven by a PD controller k_p=100, k_v=20, 100 Hz physics, 10 Hz control) with relative
    actions, an exact ``set_state`` and the LeWM / DINO-WM success test. gym-pusht always draws
    its fixed green goal-T overlay; that overlay is *not* the planning goal (the reference does the same).

Action Space:
    ``Box(-1, 1, (2,), float32)``, relative: the PD target is ``agent position + 100 * action``
    (pixels), clipped to the 512x512 world.

Observation Space:
    ``Box(0, 255, (image_size, image_size, 3), uint8)``: gym-pusht's drawing resized to ``image_size``.

State:
    ``(agent_x, agent_y, block_x, block_y, block_angle, agent_vx, agent_vy)``, float64. The block's
    velocity is not part of the state because the simulation's damping of 0 removes it at every
    physics step; the agent's velocity is, because the PD controller depends on it.

Exact state setting:
    gym-pusht's ``reset_to_state`` sets the block's position before its angle; pymunk rotates about
    the centre of gravity, so the block lands tens of pixels off. Here the angle is set first, then
    the position, velocities are zeroed (the agent's set from the state), and the shapes re-indexed
    without stepping: the round trip is exact to float precision.

Success:
    ``||(agent_xy, block_xy) - goal's|| < 20`` and wrapped ``|block_angle - goal's| < pi/9``.

Starting State:
    gym-pusht's distribution: agent in ``[50, 450)^2``, block in ``[100, 400)^2``, angle in
    ``[-pi, pi)``, all at rest; or ``reset(options={"state": ...})``. From a given state the episode
    depends only on that state and the actions (not on the seed, the env's history or the process):
    the simulator is first rebuilt at a fixed contact-free configuration (``CLEAR_SIM_STATE``).

Episode End:
    Never by itself; collectors and evaluation set budgets.

Arguments:
    ``image_size`` (int, default 64).

Version History:
    v0: initial version (lewm-bench 0.1). Reproducibility fix under the same id: a reset to a given
    state starts from a fixed simulator, not from one seeded by OS entropy (which moved the block by
    up to 0.5 px in 50 steps from run to run); seeded resets are unchanged.
"""

from __future__ import annotations

import numpy as np

from lewm_bench.envs.base import GoalEnv
from lewm_bench.envs.spec import DataSizes, EnvSpec, register_env

WORLD = 512.0
ACTION_SCALE = 100.0
SUCCESS_POS_TOL = 20.0
SUCCESS_ANGLE_TOL = np.pi / 9
# Agent, block and angle the simulator is rebuilt at before a given start state is set: far apart
# and off the walls. gym-pusht steps once at its reset state, and a contact cached there warm-starts
# pymunk's solver in the episode (a random reset state moved the block by up to 0.5 px in 50 steps).
CLEAR_SIM_STATE = (50.0, 50.0, 300.0, 300.0, 0.0)


def angle_diff(a: float, b: float) -> float:
    """Absolute angle difference wrapped to ``[0, pi]``."""
    return float(abs((a - b + np.pi) % (2 * np.pi) - np.pi))


def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    """Joint L2 error of agent and block positions (px); the angle is tested separately."""
    return float(np.linalg.norm(np.asarray(state[:4]) - np.asarray(goal_state[:4])))


def goal_cost(state: np.ndarray, goal_state: np.ndarray) -> float:
    """The success test's condition furthest from holding, in px: the position error, or the block-angle error
    scaled so that its tolerance (pi/9) counts as the position's (20 px). Below 20 exactly when the test passes."""
    return max(distance(state, goal_state), angle_diff(state[4], goal_state[4]) * SUCCESS_POS_TOL / SUCCESS_ANGLE_TOL)


def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
    """Agent and block within 20 px (joint L2 over both) and block angle within pi/9 of the goal's."""
    return distance(state, goal_state) < SUCCESS_POS_TOL and angle_diff(state[4], goal_state[4]) < SUCCESS_ANGLE_TOL


class PushTEnv(GoalEnv):
    """PushT with relative actions; see the module docstring for the full definition."""

    action_dim = 2
    state_dim = 7
    object_colour = (119, 136, 153)  # gym-pusht's LightSlateGray block

    def __init__(self, image_size: int = 64, render_mode: str | None = "rgb_array") -> None:
        super().__init__(image_size, render_mode)
        from gym_pusht.envs.pusht import PushTEnv as _PushTSim  # lazy: pymunk, pygame, cv2

        self._sim = _PushTSim(obs_type="pixels", observation_width=self.image_size,
                              observation_height=self.image_size)
        self._sim.reset(seed=0)

    is_success = staticmethod(is_success)
    distance = staticmethod(distance)
    goal_cost = staticmethod(goal_cost)

    def get_state(self) -> np.ndarray:
        agent, block = self._sim.agent, self._sim.block
        return np.array([agent.position.x, agent.position.y, block.position.x, block.position.y,
                         block.angle % (2 * np.pi), agent.velocity.x, agent.velocity.y])

    def _set_state(self, state: np.ndarray) -> None:
        agent, block = self._sim.agent, self._sim.block
        block.angle = float(state[4])  # angle first: pymunk rotates about the centre of gravity
        block.position = (float(state[2]), float(state[3]))
        block.velocity = (0.0, 0.0)
        block.angular_velocity = 0.0
        agent.position = (float(state[0]), float(state[1]))
        agent.velocity = (float(state[5]), float(state[6]))
        self._sim.space.reindex_shapes_for_body(block)
        self._sim.space.reindex_shapes_for_body(agent)

    def _reset_simulator(self, start: np.ndarray | None) -> None:
        if start is None:  # the start is sampled from this env's (seeded) generator; so is the simulator's
            self._sim.reset(seed=int(self.np_random.integers(2**31)))
        else:  # a fixed, contact-free configuration: no cached contact carries into the episode
            self._sim.reset(seed=0, options={"reset_to_state": list(CLEAR_SIM_STATE)})

    def _sample_state(self) -> np.ndarray:
        rng = self.np_random
        return np.array([rng.integers(50, 450), rng.integers(50, 450), rng.integers(100, 400),
                         rng.integers(100, 400), rng.uniform(-np.pi, np.pi), 0.0, 0.0], dtype=np.float64)

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The block jumps to a uniform position in [100, 412]^2 (its angle kept), at least 60 px from
        where it was; draws where the T would touch the agent or a wall are redrawn."""
        def draw() -> np.ndarray:
            new = np.array(state, dtype=np.float64)
            new[2:4] = rng.uniform(100.0, WORLD - 100.0, 2)
            return new

        previous = self.get_state()
        try:
            return self._redraw(draw, lambda s: np.hypot(*(s[2:4] - state[2:4])) >= 60.0 and not self.block_touches(s),
                                "block teleport")
        finally:
            self._set_state(previous)

    def block_touches(self, state: np.ndarray) -> bool:
        """True when, in ``state``, the T block overlaps the agent or a wall (pymunk's own shape query)."""
        self._set_state(state)
        block = self._sim.block
        return any(hit.shape.body is not block for shape in block.shapes
                   for hit in self._sim.space.shape_query(shape))

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"agent position": np.asarray(state[0:2], np.float64),
                "block position": np.asarray(state[2:4], np.float64),
                "block angle (sin, cos)": np.array([np.sin(state[4]), np.cos(state[4])])}

    def _simulate(self, action: np.ndarray) -> None:
        sim = self._sim
        target = np.clip(np.array(sim.agent.position) + ACTION_SCALE * action, 0.0, WORLD)
        n_substeps = int(1 / (sim.dt * sim.control_hz))
        for _ in range(n_substeps):  # gym-pusht's PD control loop, without its per-step coverage test
            accel = sim.k_p * (target - np.array(sim.agent.position)) - sim.k_v * np.array(sim.agent.velocity)
            sim.agent.velocity += tuple(accel * sim.dt)
            sim.space.step(sim.dt)

    def _render(self) -> np.ndarray:
        import pygame

        colour = pygame.Color(*self.rendered_object_colour)
        for shape in self._sim.block.shapes:  # the simulator rebuilds the block (default colour) on reset
            shape.color = colour
        return self._sim.get_obs()


# cpu: sized to collect in minutes on 2 cores (README: Benchmarks); smoke: seconds, for tests.
# proprio: agent position and velocity (state 0, 1, 5, 6), as DINO-WM's PushT ``with_velocity: true``.
SPEC = register_env(EnvSpec.of(PushTEnv, "pusht", display_name="PushT", collector="expert", proprio=(0, 1, 5, 6),
                              data={
    "paper": DataSizes(20_000, 200, 224),
    "cpu": DataSizes(1_700, 100, 64),
    "smoke": DataSizes(6, 30, 16),
}))
