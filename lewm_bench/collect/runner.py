"""Collect a reward-free dataset: parallel workers, an episode spool that survives interruption, resume.

Layout while collecting ``OUT.h5``: a folder ``OUT.h5.partial/`` holds ``config.json`` and one
``ep_NNNNNN.npz`` per finished episode, each written atomically (temporary name, then rename).
Workers run whole episodes (environment and policy in the same process, so no per-step
inter-process traffic) and write their own spool files. An episode's content depends only on
the dataset seed and its index, so the result is the same for any number of workers and after
any number of interruptions. When every episode is there, the spool is packed into ``OUT.h5``
(again via a temporary name, renamed only once complete) and removed. Interrupting (Ctrl-C,
``kill``) loses at most the episodes in progress; running the same command again resumes.

One collection owns ``OUT.h5`` at a time (:func:`lewm_bench.locks.lock_output` on ``OUT.h5.lock``,
held from the first check to the final rename): a second one fails at once naming the first.
Workers exit when the collecting process dies, even by ``kill -9``.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lewm_bench.collect.policies import CollectorConfig, Policy, make_collector
from lewm_bench.data.dataset import Episode, open_dataset, write_dataset
from lewm_bench.envs import GoalEnv, env_spec, make_env
from lewm_bench.errors import LewmBenchError
from lewm_bench.identity import dataset_identity
from lewm_bench.io import check_output_folder, read_json, write_json
from lewm_bench.locks import lock_output


@dataclass(frozen=True)
class CollectConfig:
    """Everything that determines a dataset's content (worker count does not)."""

    env: str
    """Short env name."""
    collector: CollectorConfig
    episodes: int
    max_steps: int
    """Step budget per episode (actions); an episode has at most ``max_steps + 1`` frames."""
    image_size: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    held_out_fraction: float = 0.1

    def __post_init__(self) -> None:
        env_spec(self.env)
        if not self.collector.supports(self.env):
            raise ValueError(f"collector {self.collector.name!r} does not support env {self.env!r}")
        if self.episodes < 1 or self.max_steps < 1:
            raise ValueError(f"episodes and max_steps must be >= 1; got {self.episodes}, {self.max_steps}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8 pixels (224 for the paper, 32-64 on CPU); got {self.image_size}")
        if not 0.0 <= self.held_out_fraction < 1.0:
            raise ValueError(f"held_out_fraction must be in [0, 1); got {self.held_out_fraction}")

    def metadata(self) -> dict[str, Any]:
        """The dataset attributes this config fixes (also the spool's identity)."""
        return {
            "env_name": self.env, "env_id": env_spec(self.env).gym_id,
            "env_kwargs": dict(self.env_kwargs, image_size=self.image_size), "image_size": self.image_size,
            "collector": self.collector.name, "collector_params": self.collector.params(), "seed": self.seed,
            "max_steps": self.max_steps, "held_out_fraction": self.held_out_fraction,
            "requested_episodes": self.episodes,
        }

    def identity(self) -> str:
        """The identity of the dataset this config makes (equal to the file's ``DatasetMeta.identity``)."""
        m = self.metadata()
        return dataset_identity(self.env, m["env_kwargs"], self.image_size, self.collector.name, m["collector_params"],
                                self.seed, self.max_steps, self.held_out_fraction, self.episodes)

    @classmethod
    def from_profile(cls, env: str, profile: Any) -> CollectConfig:
        """The dataset a :class:`lewm_bench.profiles.Profile` trains on: its sizes, the env's scripted collector."""
        sizes = profile.data_for(env)
        return cls(env=env, collector=make_collector(env, **sizes.collector_params), episodes=sizes.episodes,
                   max_steps=sizes.max_steps,
                   image_size=sizes.image_size, env_kwargs=dict(sizes.env_kwargs))

    def default_path(self, root: str | os.PathLike[str] = "runs/data") -> Path:
        return Path(root) / self.env / (f"{self.collector.name}-{self.image_size}px-{self.episodes}ep-"
                                        f"seed{self.seed}.h5")


def episode_seed(seed: int, index: int) -> int:
    """The seed of episode ``index`` of a dataset with seed ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint32)[0])


def run_episode(env: GoalEnv, policy: Policy, seed: int, max_steps: int) -> Episode:
    """Run one episode of ``policy`` from a seeded reset; stops at ``max_steps`` or when the policy ends it."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    policy.reset(env, rng)
    frames, states, actions = [obs], [info["state"]], []
    for _ in range(max_steps):
        action = policy.act(env, rng)
        if action is None:
            break
        obs, _, _, _, info = env.step(action)
        actions.append(np.asarray(action, np.float32))
        frames.append(obs)
        states.append(info["state"])
    actions.append(np.full(env.action_dim, np.nan, np.float32))
    return Episode(np.stack(frames), np.stack(actions), np.stack(states), seed)


# ------------------------------------------------------------------------------ worker side
_worker: dict[str, Any] = {}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _init_worker(config: CollectConfig, spool: Path) -> None:
    _worker["config"] = config
    _worker["spool"] = spool
    _worker["env"] = make_env(config.env, image_size=config.image_size, **config.env_kwargs)
    _worker["policy"] = config.collector.policy()


def _init_pool_worker(config: CollectConfig, spool: Path, parent: int) -> None:
    die_with_parent(parent)
    _init_worker(config, spool)


def die_with_parent(parent: int) -> None:
    """End this worker as soon as the process ``parent`` that started it dies, even by ``kill -9``.

    Linux: the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``). Everywhere,
    a daemon thread also polls the parent pid, since a worker is re-parented when its parent dies.
    A worker killed mid-episode loses only that episode (spool files appear by rename).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl: the poll below still ends the worker
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True, name="lewm-parent-watch").start()


def _exit_when_orphaned(parent: int, interval: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _collect_to_spool(index: int) -> int:
    cfg: CollectConfig = _worker["config"]
    ep = run_episode(_worker["env"], _worker["policy"], episode_seed(cfg.seed, index), cfg.max_steps)
    final = _spool_file(_worker["spool"], index)
    tmp = final.with_name(".tmp-" + final.name)
    np.savez(tmp, pixels=ep.pixels, actions=ep.actions, states=ep.states, seed=np.uint64(ep.seed))
    os.replace(tmp, final)
    return len(ep.pixels)


def _spool_file(spool: Path, index: int) -> Path:
    return spool / f"ep_{index:06d}.npz"


# -------------------------------------------------------------------------------- main side
def collect(config: CollectConfig, out: str | os.PathLike[str] | None = None, workers: int = 2,
            force: bool = False, progress: bool = True) -> Path:
    """Collect ``config`` into an HDF5 dataset and return its path (resuming an interrupted run).

    Args:
        config: what to collect.
        out: dataset path (default :meth:`CollectConfig.default_path`).
        workers: worker processes (1 runs in this process).
        force: delete an existing dataset or spool for ``out`` and start over.
        progress: show a progress bar.
    """
    path = Path(out) if out is not None else config.default_path()
    if path.is_dir():
        raise LewmBenchError(f"{path} is a folder; expected a dataset file path (.h5): choose another --out")
    check_output_folder(path.parent)  # before the work: the dataset's folder must be writable
    with lock_output(path):  # one writer per dataset: a second collect of the same --out fails at once
        _collect_locked(config, path, workers, force, progress)
    return path


def _collect_locked(config: CollectConfig, path: Path, workers: int, force: bool, progress: bool) -> None:
    spool = path.with_name(path.name + ".partial")
    meta = config.metadata()
    if force:
        path.unlink(missing_ok=True)
        shutil.rmtree(spool, ignore_errors=True)
    if path.exists():
        with open_dataset(path, config.env) as ds:
            same = {k: getattr(ds.meta, k) for k in ("env_kwargs", "collector", "collector_params", "seed",
                                                     "max_steps", "image_size")}
            wanted = {k: meta[k] for k in same}
            if same != wanted or ds.meta.num_episodes != config.episodes:
                raise LewmBenchError(f"{path} already holds a different dataset ({ds.meta.num_episodes} episodes, "
                                     f"{same}); choose another --out or pass --force to replace it")
            _check_provenance(ds.meta.collector_provenance, config.collector.provenance(), str(path))
        shutil.rmtree(spool, ignore_errors=True)  # left by a kill between the rename and the clean-up
        return
    spool.mkdir(parents=True, exist_ok=True)
    cfg_file = spool / "config.json"
    if cfg_file.exists():
        previous = read_json(cfg_file, "pass --force to discard the interrupted collection")
        if previous != json.loads(json.dumps(meta)):
            raise LewmBenchError(f"{spool} holds an interrupted collection with other settings ({previous}); "
                                 "rerun that command to finish it, or pass --force to discard it")
    else:
        tmp = cfg_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, cfg_file)
    for stale in spool.glob(".tmp-*"):
        stale.unlink()
    todo = [i for i in range(config.episodes) if not _spool_file(spool, i).exists()]
    provenance_file = spool / "provenance.json"
    provenance = read_json(provenance_file, "pass --force to discard the interrupted collection") \
        if provenance_file.exists() else None
    if todo:
        config.collector.prepare()  # e.g. train the SAC expert once, before the workers load it
        current = config.collector.provenance()
        if provenance is None:
            write_json(provenance_file, current)
            provenance = current
        _check_provenance(provenance, current, f"the interrupted collection in {spool}")
    bar = tqdm(total=config.episodes, initial=config.episodes - len(todo), unit="ep", disable=not progress,
               desc=f"collect {config.env}/{config.collector.name}")
    for _ in _run(config, spool, todo, workers):
        bar.update(1)
    bar.close()
    _pack(config, spool, path, dict(meta, collector_provenance=provenance or {}))


def _check_provenance(recorded: dict[str, Any], current: dict[str, Any], what: str) -> None:
    """Fail when the collector now runs with something else (e.g. another trained expert) than ``what`` was
    collected with: two experts' episodes must never share one dataset."""
    if recorded and current and recorded != current:
        raise LewmBenchError(f"{what} was collected with {recorded}, but the collector now runs with {current} "
                             "(its expert was retrained or replaced); pass --force to recollect it all with the "
                             "current one, or choose another --out")


def _run(config: CollectConfig, spool: Path, todo: list[int], workers: int) -> Iterator[int]:
    if not todo:
        return
    if workers <= 1:
        _init_worker(config, spool)
        try:
            for i in todo:
                yield _collect_to_spool(i)
        finally:
            _worker["env"].close()
            _worker.clear()
        return
    # spawn, not fork: MuJoCo's GL context and pygame do not survive a fork.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_pool_worker,
                             initargs=(config, spool, os.getpid())) as pool:
        try:
            yield from pool.map(_collect_to_spool, todo)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _pack(config: CollectConfig, spool: Path, path: Path, meta: dict[str, Any]) -> None:
    files = [_spool_file(spool, i) for i in range(config.episodes)]
    lengths = []
    for f in files:
        with np.load(f) as z:
            lengths.append(z["actions"].shape[0])

    def episodes() -> Iterator[Episode]:
        for f in files:
            with np.load(f) as z:
                yield Episode(z["pixels"], z["actions"], z["states"], int(z["seed"]))

    attrs = {k: v for k, v in meta.items() if k != "requested_episodes"}
    write_dataset(path, attrs, episodes(), np.array(lengths))
    shutil.rmtree(spool)


def collection_rate(config: CollectConfig, workers: int, out_dir: Path) -> tuple[float, float]:
    """Collect ``config`` from scratch under ``out_dir``; return (frames/s, seconds), packing excluded."""
    spool = out_dir / f"bench-{config.env}-{workers}w.partial"
    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    start = time.perf_counter()
    frames = sum(_run(config, spool, list(range(config.episodes)), workers))
    seconds = time.perf_counter() - start
    shutil.rmtree(spool)
    return frames / seconds, seconds
