"""One offscreen MuJoCo renderer per process for all simulators of the same model files.

An evaluation keeps one simulator per episode of a batch (Cube: 10), and ``mujoco.Renderer`` gives each its own
GL context, with the model's meshes and textures uploaded into it: about 115 MB per Cube simulator with Mesa's
llvmpipe, more than a third of what one holds. What a frame depends on beyond those uploads (poses, colours,
materials, the camera) is read from the simulator's own model and data when its scene is built, so simulators whose
models carry the same meshes, textures and offscreen settings can share one context: :func:`render` keeps one per
process and such group, and draws each simulator's scene from its own model and data. The frames are the ones a
renderer of its own draws (``tests/envs/test_mujoco_render.py`` compares them byte for byte). Threads of a process
render one at a time.

Without shadows and reflections, geoms that lie wholly outside the camera's view are left out of the scene
(:func:`outside_view`): they draw no pixel, but Mesa's llvmpipe transforms every triangle it is given (Cube's arm and
gripper: ~190k triangles, 20 of the 23 ms of a 64 px frame), so the frames are the same, sooner.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import numpy as np

_RENDERERS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def uploads_key(model: Any) -> str:
    """A digest of what ``mujoco.MjrContext`` uploads from ``model`` when it is made (meshes, textures, height
    fields, skins and the offscreen buffer's size and multisampling): models with equal keys can share a renderer."""
    h = hashlib.blake2b(digest_size=16)
    for name in ("mesh_vert", "mesh_normal", "mesh_face", "mesh_texcoord", "mesh_facetexcoord", "tex_data",
                 "tex_height", "tex_width", "hfield_data", "skin_vert"):
        a = np.ascontiguousarray(getattr(model, name, np.empty(0)))
        h.update(f"{name}:{a.dtype}:{a.shape};".encode())
        h.update(a.tobytes())
    g = model.vis.global_
    h.update(f"{g.offwidth}x{g.offheight}:{model.vis.quality.offsamples}".encode())
    return h.hexdigest()


def render(model: Any, data: Any, camera: str, size: int, key: str, flags: dict[int, int] | None = None) -> np.ndarray:
    """A (size, size, 3) uint8 frame of ``data`` seen from the named fixed ``camera``.

    Args:
        model: the simulator's ``MjModel`` (its colours and materials as they are now).
        data: its ``MjData`` (poses up to date: after ``mj_kinematics`` or ``mj_forward``).
        camera: the name of a camera of the model.
        size: image height and width in pixels.
        key: ``uploads_key(model)``, computed once per simulator.
        flags: scene render flags to set (``mujoco.mjtRndFlag`` value -> 0/1), e.g. shadows off; part of the
            renderer's identity, so simulators with other flags get another renderer.
    """
    import mujoco

    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
    cam.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cam.fixedcamid < 0:
        raise ValueError(f"camera {camera!r} not in the model; expected one of "
                         f"{[model.camera(i).name for i in range(model.ncam)]}")
    flags = flags or {}
    ident = (os.getpid(), key, size, tuple(sorted(flags.items())))  # a GL context does not survive a fork
    option = mujoco.MjvOption()
    # An unseen geom can still cast a shadow or show in a mirror into the view: cull only without either.
    reflections = flags.get(int(mujoco.mjtRndFlag.mjRND_REFLECTION), 1) != 0 and np.any(model.mat_reflectance > 0)
    cull = flags.get(int(mujoco.mjtRndFlag.mjRND_SHADOW), 1) == 0 and not reflections
    hidden = outside_view(model, data, cam.fixedcamid) if cull else np.empty(0, dtype=np.int64)
    with _LOCK:
        renderer = _RENDERERS.get(ident)
        if renderer is None:
            renderer = _RENDERERS[ident] = mujoco.Renderer(model, size, size)
            for flag, value in flags.items():
                renderer.scene.flags[flag] = value
        groups = model.geom_group[hidden].copy()
        model.geom_group[hidden] = _CULLED_GROUP  # a group the option does not draw, for the scene's making only
        option.geomgroup[_CULLED_GROUP] = 0
        try:
            mujoco.mjv_updateScene(model, data, option, None, cam, mujoco.mjtCatBit.mjCAT_ALL, renderer.scene)
        finally:
            model.geom_group[hidden] = groups
        return renderer.render()


_CULLED_GROUP = 5  # MuJoCo's last geom group, hidden by default


def outside_view(model: Any, data: Any, camera: int) -> np.ndarray:
    """Indices of the geoms whose bounding spheres lie wholly outside the view of the fixed perspective ``camera``
    of a square image (one of the four side planes of its view pyramid has the whole sphere on its outer side).

    Conservative: a geom that may show is kept (the spheres are enlarged by 1%). None for a camera whose frustum is
    not given by ``fovy`` alone (an orthographic camera, or one with intrinsics / a sensor size)."""
    if model.cam_projection[camera] != 0 or np.any(model.cam_sensorsize[camera] > 0):  # 0: perspective
        return np.empty(0, dtype=np.int64)
    axes = data.cam_xmat[camera].reshape(3, 3)  # columns: the camera's x (right), y (up), z (backwards)
    local = (data.geom_xpos - data.cam_xpos[camera]) @ axes
    x, y, depth = local[:, 0], local[:, 1], -local[:, 2]
    tan = np.tan(np.deg2rad(model.cam_fovy[camera]) / 2)
    # signed distance to each side plane x = +-tan * depth, y = +-tan * depth (positive outside)
    beyond = (np.maximum(np.abs(x), np.abs(y)) - tan * depth) / np.sqrt(1 + tan * tan)
    return np.flatnonzero(beyond > 1.01 * model.geom_rbound + 1e-6)
