"""OGBench-Cube: single-cube pick-and-place with a UR5e arm and Robotiq gripper (MuJoCo).

Description:
    Wraps ``ogbench``'s ``visual-cube-single-v0`` (``CubeEnv(env_type="single")``) in its
    data-collection mode: every reset places the arm and the cube at random and draws a random
    target, which OGBench's scripted oracle uses (``oracle_info``). The target marker is not drawn
    (``visualize_info=False``), so images show only the arm, the table and the cube.

Action Space:
    ``Box(-1, 1, (5,), float32)``: end-effector dx, dy, dz, dyaw and gripper (OGBench's normalised
    relative control).

Observation Space:
    ``Box(0, 255, (image_size, image_size, 3), uint8)`` from OGBench's ``front_pixels`` camera.

State:
    ``concat(qpos, qvel)`` of the MuJoCo model (21 + 20 = 41 float64); the cube's position is
    ``qpos[14:17]``.

Success:
    The cube within ``SUCCESS_RADIUS`` = 0.04 m of the goal state's cube position.

Differences from OGBench:
    After every step the body poses are recomputed from the new joint positions (OGBench's
    ``mj_step`` leaves them one 2 ms physics substep behind), so the rendered frame, the next
    relative action and ``set_state`` of the recorded state agree exactly. A step runs OGBench's control and
    physics but not its observation, reward and info (unused here): the same states bit for bit, 1.2x faster.

Rendering:
    ``fast_render=True`` turns shadows and multisample anti-aliasing off (about 4x faster on a CPU
    with Mesa llvmpipe; the images differ, so the option is part of the recorded env kwargs).
    Needs ``MUJOCO_GL=egl`` (or osmesa) on machines without a display.

Starting State:
    OGBench's data-collection distribution (arm pose, cube position and yaw at random); or
    ``reset(options={"state": ...})``, after which the episode depends only on that state and the
    actions (OGBench's simulator is first reset with a fixed seed).

Episode End:
    Never by itself; collectors and evaluation set budgets.

Arguments:
    ``image_size`` (int, default 64), ``fast_render`` (bool, default False).

Version History:
    v0: initial version (lewm-bench 0.1). Reproducibility fix under the same id: a reset to a given
    state resets OGBench's simulator with a fixed seed, not one drawn from OS entropy; seeded resets
    are unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lewm_bench.envs.base import GoalEnv
from lewm_bench.envs.mujoco_render import render, uploads_key
from lewm_bench.envs.spec import DataSizes, EnvSpec, register_env

SUCCESS_RADIUS = 0.04
CUBE_POS = slice(14, 17)
CUBE_AREA = (np.array([0.3, -0.3]), np.array([0.55, 0.3]))
"""OGBench's cube sampling area (x, y) in metres: lower and upper corners."""
N_QPOS, N_QVEL = 21, 20


def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    """Distance (m) between the cube and the goal state's cube position."""
    return float(np.linalg.norm(np.asarray(state[CUBE_POS]) - np.asarray(goal_state[CUBE_POS])))


def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
    """Cube within 0.04 m of the goal state's cube position."""
    return distance(state, goal_state) <= SUCCESS_RADIUS


class CubeEnv(GoalEnv):
    """OGBench single-cube manipulation; see the module docstring for the full definition."""

    action_dim = 5
    state_dim = N_QPOS + N_QVEL
    object_colour = (245, 66, 84)  # OGBench's cube, RGBA (0.96, 0.26, 0.33, 1)
    # each simulator holds its own MuJoCo model, about 200 MB at 64 px (and the process one renderer,
    # envs/mujoco_render.py): 50 at once (one per evaluation episode, each with its own renderer then)
    # peaked at 22 GB with DINO-WM-style planning beside them
    max_parallel = 10

    def __init__(self, image_size: int = 64, fast_render: bool = False,
                 render_mode: str | None = "rgb_array") -> None:
        super().__init__(image_size, render_mode)
        os.environ.setdefault("MUJOCO_GL", "egl")
        from ogbench.manipspace.envs.cube_env import CubeEnv as _OGCube  # lazy: MuJoCo, dm_control

        self.fast_render = bool(fast_render)
        self._sim = _OGCube(env_type="single", ob_type="pixels", width=self.image_size, height=self.image_size,
                            mode="data_collection", visualize_info=False, terminate_at_goal=False,
                            permute_blocks=False)
        # The first reset builds the model with OGBench's pixel colours; its pixel observation (a render with a
        # renderer we may replace at once) is skipped: the renderer is made on the first render.
        self._sim.compute_observation = lambda: None
        self._sim.reset(seed=0)
        del self._sim.compute_observation
        # From here on OGBench's step must not render (we render once, from consistent kinematics).
        self._sim._ob_type = "states"
        if self._sim.model.nq != N_QPOS or self._sim.model.nv != N_QVEL:
            raise RuntimeError(f"unexpected ogbench cube model: nq={self._sim.model.nq}, nv={self._sim.model.nv}; "
                               f"expected {N_QPOS}, {N_QVEL}. Install the ogbench version pinned in pyproject.toml.")
        import mujoco

        if self.fast_render:
            self._sim.model.vis.quality.offsamples = 0  # no multisample anti-aliasing (read when a renderer is made)
        self._render_flags = {int(mujoco.mjtRndFlag.mjRND_SHADOW): 0} if self.fast_render else {}
        self._render_key = uploads_key(self._sim.model)

        self._cube_geom = mujoco.mj_name2id(self._sim.model, mujoco.mjtObj.mjOBJ_GEOM, "object_0")
        self._cube_rgba = self._sim.model.geom_rgba[self._cube_geom].copy()  # exact, so frames match the data

    is_success = staticmethod(is_success)
    distance = staticmethod(distance)

    def get_state(self) -> np.ndarray:
        data = self._sim.data
        return np.concatenate([data.qpos, data.qvel]).astype(np.float64)

    def _set_state(self, state: np.ndarray) -> None:
        self._sim.set_state(state[:N_QPOS], state[N_QPOS:])

    def _reset_simulator(self, start: np.ndarray | None) -> None:
        # A sampled start is OGBench's own draw, from a seed out of this env's generator. Before a given
        # start the seed is fixed: OGBench's settling steps warm-start MuJoCo's solver and its generator
        # draws the data-collection targets, so a random seed would leak into the episode.
        self._sim.reset(seed=int(self.np_random.integers(2**31)) if start is None else 0)

    def _sample_state(self) -> np.ndarray:
        return self.get_state()  # the simulator's reset already drew OGBench's random start

    def _simulate(self, action: np.ndarray) -> None:
        import mujoco

        # OGBench's step without its observation, reward and info (three passes over its observation dictionary, a
        # fifth of a step): the same control and physics, the same state bit for bit (tested against OGBench's step).
        # The previous joint state its info reports is kept as its step would.
        sim, model, data = self._sim, self._sim.model, self._sim.data
        sim.set_control(np.asarray(action))
        sim._prev_qpos, sim._prev_qvel = data.qpos.copy(), data.qvel.copy()
        mujoco.mj_step(model, data, nstep=sim._n_steps)
        mujoco.mj_rnePostConstraint(model, data)  # contact forces, as OGBench's step (its info reads them)
        # mj_step leaves body poses one physics substep behind qpos; refresh them so that rendering,
        # the next relative action and a set_state of this state all see the same pose.
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)

    def _render(self) -> np.ndarray:
        rgba = self._cube_rgba.copy()
        if self._object_rgb is not None:
            rgba[:3] = np.asarray(self._object_rgb) / 255.0
        self._sim.model.geom_rgba[self._cube_geom] = rgba
        return render(self._sim.model, self._sim.data, "front_pixels", self.image_size, self._render_key,
                      self._render_flags)

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The cube jumps (velocity zeroed, orientation and height kept: a lifted cube then falls) to a
        uniform place in OGBench's cube sampling area, at least 8 cm from where it was and 8 cm
        (horizontally) from the gripper."""
        gripper = self.physical_quantities(state)["effector position"]

        def draw() -> np.ndarray:
            new = np.array(state, dtype=np.float64)
            new[CUBE_POS.start:CUBE_POS.start + 2] = rng.uniform(CUBE_AREA[0], CUBE_AREA[1])
            new[N_QPOS + 14:N_QPOS + 20] = 0.0  # the cube's free-joint velocity
            return new

        return self._redraw(draw, lambda s: np.linalg.norm(s[CUBE_POS] - state[CUBE_POS]) >= 0.08
                            and np.linalg.norm(s[CUBE_POS][:2] - gripper[:2]) >= 0.08, "cube teleport")

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """End-effector (pinch site) and cube positions in metres; sets the simulator to ``state``."""
        import mujoco

        sim = self._sim
        self._set_state(np.asarray(state, np.float64))
        mujoco.mj_kinematics(sim.model, sim.data)
        return {"effector position": sim.data.site_xpos[sim._pinch_site_id].astype(np.float64).copy(),
                "cube position": np.asarray(state[CUBE_POS], np.float64)}

    # --------------------------------------------------------------- data-collection support
    def oracle_info(self) -> dict[str, Any]:
        """OGBench's privileged step info (effector, cube and target poses) for its scripted oracle."""
        return self._sim.compute_ob_info()

    def new_target(self) -> None:
        """Draw a new random cube target (OGBench data-collection mode), as its collectors do."""
        self._sim.set_new_target(return_info=False)

    @property
    def oracle_env(self) -> Any:
        """The wrapped OGBench environment, as OGBench's oracles expect it."""
        return self._sim

    def close(self) -> None:
        self._sim.close()


# cpu: sized to collect in minutes on 2 cores (README: Benchmarks); smoke: seconds, for tests.
# proprio: the arm's state, joint positions and velocities of the UR5e and its gripper (qpos[0:14], qvel[0:14]).
SPEC = register_env(EnvSpec.of(CubeEnv, "cube", display_name="Cube", collector="oracle",
                              proprio=(*range(14), *range(N_QPOS, N_QPOS + 14)), data={
    "paper": DataSizes(10_000, 200, 224),
    "cpu": DataSizes(160, 200, 64, {"fast_render": True}),
    "smoke": DataSizes(4, 40, 16, {"fast_render": True}),
}))
