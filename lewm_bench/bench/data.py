"""``lewm-bench bench data``: collection frames/s with 1 and 2 workers, and loader clips/s.

Collection is timed from pool start to the last episode on disk (process start-up included;
packing into HDF5 excluded) with each env's scripted collector at the profile's image size. The
loader is timed on a Two-Room dataset at 64x64 collected for the purpose: random single-clip
access with frames in memory and read from disk per clip, and batches of 128 through a
``DataLoader``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lewm_bench.bench.common import rate
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect, collection_rate
from lewm_bench.data.clips import ClipDataset
from lewm_bench.envs import ENVS
from lewm_bench.profiles import Profile

# Episodes and steps per env for one collection measurement (about 10-20 s each on 2 cores).
COLLECT_SIZES = {"two-room": (4000, 100), "pusht": (64, 100), "cube": (12, 60), "reacher": (40, 100)}


def bench_collection(profile: Profile, envs: list[str] | None = None, scale: float = 1.0,
                     workers: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in envs or list(ENVS):
            episodes, steps = COLLECT_SIZES[name]
            sizes = profile.data_for(name)
            cfg = CollectConfig(env=name, collector=make_collector(name, **sizes.collector_params),
                                episodes=max(2, int(episodes * scale)), max_steps=steps, image_size=sizes.image_size,
                                env_kwargs=dict(sizes.env_kwargs))
            cfg.collector.prepare()  # e.g. Reacher's SAC expert is trained (or found) before the clock starts
            row: dict[str, Any] = {"env": name, "image_size": sizes.image_size, "episodes": cfg.episodes}
            for w in workers:
                row[f"frames_per_s_{w}w"], row[f"seconds_{w}w"] = collection_rate(cfg, w, Path(tmp))
            if len(workers) > 1:
                row["speedup"] = row[f"frames_per_s_{workers[-1]}w"] / row[f"frames_per_s_{workers[0]}w"]
            rows.append(row)
    return rows


def bench_loader(episodes: int = 300, image_size: int = 64, seconds: float = 2.0,
                 batch_size: int = 128) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=episodes,
                            max_steps=100, image_size=image_size)
        path = collect(cfg, Path(tmp) / "loader.h5", workers=2, progress=False)
        return [_measure_loader(path, in_memory, seconds, batch_size) for in_memory in (True, False)]


def _measure_loader(path: Path, in_memory: bool, seconds: float, batch_size: int) -> dict[str, Any]:
    start = time.perf_counter()
    ds = ClipDataset(path, in_memory=in_memory)
    open_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    single = rate(lambda: ds[int(rng.integers(len(ds)))], seconds)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)
    batches = _forever(loader)
    batched = rate(lambda: next(batches), seconds) * batch_size
    return {"source": "memory" if in_memory else "disk", "image_size": ds.meta.image_size, "clips": len(ds),
            "open_s": open_s, "clips_per_s": single, "batched_clips_per_s": batched}


def _forever(loader: torch.utils.data.DataLoader) -> Iterator[Any]:
    while True:
        yield from loader
