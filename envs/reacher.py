"""Reacher: dm_control's two-link planar reacher, the DINO-WM variant that LeWM's paper uses (MuJoCo).

Description:
    dm_control's ``reacher`` model (``suite/reacher.xml``, read from the installed dm_control
    package and simulated with MuJoCo directly): a two-link arm (links 0.12 m, a shoulder hinge
    without limits and a wrist hinge limited to +-160 degrees) in a 0.6 m square arena seen from the
    top. As in DINO-WM, the goal is a target *joint configuration* shown as a goal image, so
    dm_control's target sphere is not drawn and plays no part.

Action Space:
    ``Box(-1, 1, (2,), float32)``: shoulder and wrist motor commands (dm_control's control range;
    gear 0.05). One action is one 0.02 s physics step, dm_control's control step.

Observation Space:
    ``Box(0, 255, (image_size, image_size, 3), uint8)`` from dm_control's top-down ``fixed``
    camera. Shadows, reflections and multisampling are off (about 10x faster on a CPU renderer).

State:
    ``(shoulder, wrist, shoulder velocity, wrist velocity)`` float64 (rad, rad/s); the shoulder
    angle is wrapped to ``[-pi, pi)`` (the arm is rotation symmetric, so this is the same physics).

Success:
    Every joint within ``SUCCESS_TOLERANCE`` = 0.05 rad of the goal configuration (wrapped angles).

Starting State:
    dm_control's ``randomize_limited_and_rotational_joints``: shoulder uniform in ``[-pi, pi)``,
    wrist uniform in its range, velocities zero; or ``reset(options={"state": ...})``.

Episode End:
    Never by itself; collectors and evaluation set budgets.

Arguments:
    ``image_size`` (int, default 64). Needs ``MUJOCO_GL=egl`` (or osmesa) on machines without a display.

Version History:
    v0: initial version (lewm-bench 0.1).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from lewm_bench.envs.base import GoalEnv
from lewm_bench.envs.mujoco_render import render, uploads_key
from lewm_bench.envs.spec import DataSizes, EnvSpec, register_env

SUCCESS_TOLERANCE = 0.05
WRIST_LIMIT = np.deg2rad(160.0)
LINK = 0.12
"""Length (m) of each link: shoulder to wrist and wrist to fingertip."""
_ARM_MATERIALS = ("self", "effector")


def wrap(angle: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to ``[-pi, pi)``."""
    return (np.asarray(angle, np.float64) + np.pi) % (2 * np.pi) - np.pi


def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    """Largest wrapped joint-angle difference (rad) between the state and the goal configuration."""
    return float(np.max(np.abs(wrap(np.asarray(state[:2]) - np.asarray(goal_state[:2])))))


def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
    """Every joint within 0.05 rad of the goal joint configuration."""
    return distance(state, goal_state) <= SUCCESS_TOLERANCE


def fingertip(state: np.ndarray) -> np.ndarray:
    """Fingertip (x, y) in metres from the joint angles (forward kinematics of the two links)."""
    q1, q2 = float(state[0]), float(state[1])
    return LINK * np.array([np.cos(q1) + np.cos(q1 + q2), np.sin(q1) + np.sin(q1 + q2)])


def _model_files() -> tuple[str, dict[str, bytes]]:
    """dm_control's reacher XML and the common files it includes, read without importing dm_control."""
    spec = importlib.util.find_spec("dm_control")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("Reacher needs dm_control's model files: pip install dm_control "
                                  "(ogbench installs it)")
    suite = Path(next(iter(spec.submodule_search_locations))) / "suite"
    assets = {f"./common/{n}": (suite / "common" / n).read_bytes() for n in ("skybox.xml", "visual.xml",
                                                                            "materials.xml")}
    return (suite / "reacher.xml").read_text(), assets


class ReacherEnv(GoalEnv):
    """Two-link reacher to a goal joint configuration; see the module docstring for the full definition."""

    action_dim = 2
    state_dim = 4
    object_colour = (178, 127, 76)  # dm_control's "self" material (0.7, 0.5, 0.3)

    def __init__(self, image_size: int = 64, render_mode: str | None = "rgb_array") -> None:
        super().__init__(image_size, render_mode)
        os.environ.setdefault("MUJOCO_GL", "egl")
        import mujoco  # lazy: MuJoCo loads when an env is made

        xml, assets = _model_files()
        self._model = mujoco.MjModel.from_xml_string(xml, assets)
        self._data = mujoco.MjData(self._model)
        target = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_GEOM, "target")
        self._model.geom_rgba[target, 3] = 0.0
        self._model.geom_matid[target] = -1  # the goal is a configuration, not dm_control's target sphere
        self._materials = [mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_MATERIAL, n) for n in _ARM_MATERIALS]
        self._material_rgba = self._model.mat_rgba[self._materials].copy()
        self._model.vis.quality.offsamples = 0
        self._render_key = uploads_key(self._model)

    is_success = staticmethod(is_success)
    distance = staticmethod(distance)

    def get_state(self) -> np.ndarray:
        d = self._data
        return np.array([wrap(d.qpos[0]), d.qpos[1], d.qvel[0], d.qvel[1]], np.float64)

    def _set_state(self, state: np.ndarray) -> None:
        import mujoco

        d = self._data
        mujoco.mj_resetData(self._model, d)  # nothing but the state carries over (warm starts, time, controls)
        d.qpos[:] = state[:2]
        d.qvel[:] = state[2:4]
        mujoco.mj_forward(self._model, d)

    def _sample_state(self) -> np.ndarray:
        rng = self.np_random
        return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT), 0.0, 0.0])

    def _simulate(self, action: np.ndarray) -> None:
        import mujoco

        self._data.ctrl[:] = action
        mujoco.mj_step(self._model, self._data)
        # mj_step leaves body poses at the pre-step qpos; recompute them so the frame shows this state.
        mujoco.mj_forward(self._model, self._data)

    def _render(self) -> np.ndarray:
        import mujoco

        rgba = self._material_rgba.copy()
        if self._object_rgb is not None:
            rgba[:, :3] = np.asarray(self._object_rgb) / 255.0
        self._model.mat_rgba[self._materials] = rgba
        return render(self._model, self._data, "fixed", self.image_size, self._render_key,
                      {int(mujoco.mjtRndFlag.mjRND_SHADOW): 0, int(mujoco.mjtRndFlag.mjRND_REFLECTION): 0})

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The arm jumps to a uniform joint configuration at least 0.5 rad (some joint) from the current one,
        velocities zeroed."""
        def draw() -> np.ndarray:
            return np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT), 0.0, 0.0])

        return self._redraw(draw, lambda s: distance(s, state) >= 0.5, "arm teleport")

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Joint angles as (sin, cos) pairs (continuous across the wrap at pi) and the fingertip position (m)."""
        q = np.asarray(state[:2], np.float64)
        return {"joint angles (sin, cos)": np.concatenate([np.sin(q), np.cos(q)]),
                "fingertip position": fingertip(state)}


# Paper: 10,000 episodes of 200 steps from a SAC policy (SPEC 3.4); the expert's SAC budget per profile.
# cpu: collected in minutes on 2 cores; smoke: seconds (a SAC "expert" of 200 steps: a check, not an expert).
# proprio: the whole state (both joint angles and velocities): the arm is the agent's own body.
SPEC = register_env(EnvSpec.of(ReacherEnv, "reacher", display_name="Reacher", collector="sac", proprio=(0, 1, 2, 3),
                              data={
    "paper": DataSizes(10_000, 200, 224, collector_params={"train_steps": 100_000}),
    "cpu": DataSizes(1_000, 100, 32, collector_params={"train_steps": 10_000}),
    "smoke": DataSizes(8, 40, 16, collector_params={"train_steps": 200}),
}))
