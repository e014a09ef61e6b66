"""One offscreen MuJoCo renderer per process for all simulators of the same model files.

An evaluation keeps one simulator per episode of a batch (Cube: 10), and ``mujoco.Renderer`` gives each its own
GL context, with the model's meshes and textures uploaded into it: about 115 MB per Cube simulator with Mesa's
llvmpipe, more than a third of what one holds. What a frame depends on beyond those uploads (poses, colours,
materials, the camera) is read from the simulator's own model and data when its scene is built, so simulators whose
models carry the same meshes, textures and offscreen settings can share one context: :func:`render` keeps one per
process and such group, and draws each simulator's scene from its own model and data. The frames are the ones a
renderer of its own draws (``tests/envs/test_mujoco_render.py`` compares them byte for byte). Threads of a process
render one at a time.
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
    with _LOCK:
        renderer = _RENDERERS.get(ident)
        if renderer is None:
            renderer = _RENDERERS[ident] = mujoco.Renderer(model, size, size)
            for flag, value in flags.items():
                renderer.scene.flags[flag] = value
        mujoco.mjv_updateScene(model, data, mujoco.MjvOption(), None, cam, mujoco.mjtCatBit.mjCAT_ALL, renderer.scene)
        return renderer.render()
