"""``lewm-bench bench envs``: environment speed per env and image size.

Three figures per (env, size, render setting): ``step_per_s`` (one ``env.step``, which renders the
observation), ``render_per_s`` (rendering a stored state as a goal image, no physics) and
``physics_per_s`` (the simulator alone, where it can run without rendering; OGBench renders
inside its own step, so Cube has none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lewm_bench.bench.common import rate
from lewm_bench.envs import ENVS, make_env

SIZES = (64, 224)


def bench_envs(envs: list[str] | None = None, sizes: tuple[int, ...] = SIZES,
               seconds: float = 1.0) -> list[dict[str, Any]]:
    """Measure every env in ``envs`` (default all) at every size; Cube with both render settings."""
    rows = []
    for name in envs or list(ENVS):
        for size in sizes:
            for fast in ((False, True) if name == "cube" else (None,)):
                rows.append(_measure(name, size, fast, seconds))
    return rows


def _measure(name: str, size: int, fast_render: bool | None, seconds: float) -> dict[str, Any]:
    env = make_env(name, image_size=size, **({} if fast_render is None else {"fast_render": fast_render}))
    rng = np.random.default_rng(0)

    def timed(fn) -> float:
        env.reset(seed=0)
        return rate(fn, seconds)

    env.reset(seed=0)
    state = env.get_state()
    row = {"env": name, "image_size": size, "render": "fast" if fast_render else "default",
           "step_per_s": timed(lambda: env.step(rng.uniform(-1, 1, env.action_dim).astype(np.float32))),
           "render_per_s": timed(lambda: env.render_state(state)),
           "physics_per_s": None if name == "cube"
           else timed(lambda: env._simulate(rng.uniform(-1, 1, env.action_dim)))}
    env.close()
    return row
