"""The on-disk dataset: one HDF5 file per (env, collector, image size, episode count, seed).

Schema (``schema_version`` 1). Frames of all episodes are concatenated along the first axis;
episode ``e`` owns rows ``start[e] : start[e] + length[e]``.

=========================  ===============================  =============================================
path                       dtype, shape                     meaning
=========================  ===============================  =============================================
``pixels``                 uint8 (N, H, W, 3)               RGB observations; chunked along N, gzip
``actions``                float32 (N, A)                   action taken after the frame of the same row;
                                                            NaN on each episode's last frame (none taken)
``states``                 float64 (N, S)                   physical state of the frame (env ``set_state``)
(the three arrays above)                                    each chunk has a Fletcher-32 checksum
                                                            (older files: none; readers need no change)
``episodes/start``         int64 (E,)                       first row of each episode
``episodes/length``        int64 (E,)                       number of frames of each episode
``episodes/seed``          uint64 (E,)                      seed the episode was collected with
``episodes/held_out``      bool (E,)                        True for the held-out (evaluation) split
``stats/action_mean``      float32 (A,)                     per-dimension mean of training-split actions
``stats/action_std``       float32 (A,)                     per-dimension std of training-split actions
=========================  ===============================  =============================================

File attributes: ``format`` ("lewm-bench-dataset"), ``schema_version``, ``env_name``, ``env_id``,
``env_kwargs`` (JSON), ``image_size``, ``collector``, ``collector_params`` (JSON), ``seed``,
``max_steps``, ``held_out_fraction``, ``num_episodes``, ``num_frames``, ``lewm_bench_version``,
``created`` (ISO-8601 UTC), and ``collector_provenance`` (JSON; what the collector ran with beyond its
parameters, e.g. the SHA-256 of a trained expert; ``{}`` when nothing, absent in older files).

A dataset file appears only complete: it is written under a temporary name and renamed into place
(see :mod:`lewm_bench.collect.runner`), so a file that opens and validates is never half-written.
:func:`open_dataset` checks the structure only; :func:`verify_dataset` reads every chunk and names
the damaged episodes (a disk or copy fault, or a file written by two processes at once).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np

from lewm_bench import __version__
from lewm_bench.errors import DatasetError
from lewm_bench.identity import dataset_identity
from lewm_bench.locks import lock_output

FORMAT = "lewm-bench-dataset"
SCHEMA_VERSION = 1


class Episode(NamedTuple):
    """One collected episode: ``L + 1`` frames and states, ``L`` actions (plus a NaN row)."""

    pixels: np.ndarray  # (L+1, H, W, 3) uint8
    actions: np.ndarray  # (L+1, A) float32, last row NaN
    states: np.ndarray  # (L+1, S) float64
    seed: int


@dataclass(frozen=True)
class DatasetMeta:
    """The attributes of a dataset file (see the module docstring)."""

    env_name: str
    env_id: str
    env_kwargs: dict[str, Any]
    image_size: int
    collector: str
    collector_params: dict[str, Any]
    seed: int
    max_steps: int
    held_out_fraction: float
    num_episodes: int
    num_frames: int
    schema_version: int
    lewm_bench_version: str
    created: str
    collector_provenance: dict[str, Any] = field(default_factory=dict)
    """What the collector ran with beyond its parameters (:meth:`CollectorConfig.provenance`); not part of the
    identity."""

    @property
    def identity(self) -> str:
        """The content identity (the same as the :class:`~lewm_bench.collect.runner.CollectConfig` that made it)."""
        return dataset_identity(self.env_name, self.env_kwargs, self.image_size, self.collector, self.collector_params,
                                self.seed, self.max_steps, self.held_out_fraction, self.num_episodes)


def _collect_hint(meta_env: str | None) -> str:
    env = meta_env or "ENV"
    return f"lewm-bench collect --env {env}"


def held_out_mask(num_episodes: int, fraction: float, seed: int) -> np.ndarray:
    """Seeded choice of held-out episodes: ``round(E * fraction)`` of them, at least one when E >= 2."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1); got {fraction}")
    n = int(round(num_episodes * fraction))
    if fraction > 0 and num_episodes >= 2:
        n = max(n, 1)
    mask = np.zeros(num_episodes, bool)
    mask[np.random.default_rng([seed, 1]).permutation(num_episodes)[:n]] = True
    return mask


def write_dataset(path: Path, meta: dict[str, Any], episodes: Iterable[Episode], lengths: np.ndarray) -> None:
    """Write a complete dataset to ``path`` atomically (temporary file, fsync, rename).

    ``lengths`` (frames per episode) must be known up front so the arrays are allocated once;
    ``episodes`` is consumed one at a time, so memory holds a single episode. Holds ``path``'s
    write lock (:func:`lewm_bench.locks.lock_output`; re-entrant for a caller that holds it already);
    on any failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with lock_output(path):
        try:
            _write_hdf5(tmp, path, meta, episodes, lengths)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a power cut after it cannot bring back the old name)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def _write_hdf5(tmp: Path, path: Path, meta: dict[str, Any], episodes: Iterable[Episode], lengths: np.ndarray) -> None:
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    total = int(lengths.sum())
    held_out = held_out_mask(len(lengths), meta["held_out_fraction"], meta["seed"])
    total_sum = total_sq = None
    count = 0
    with h5py.File(tmp, "w") as f:
        pix = acts = sts = None
        seeds = np.zeros(len(lengths), np.uint64)
        for e, ep in enumerate(episodes):
            if len(ep.pixels) != lengths[e]:
                raise RuntimeError(f"episode {e} has {len(ep.pixels)} frames, expected {lengths[e]}")
            if pix is None:
                h, w, c = ep.pixels.shape[1:]
                # 4-frame chunks: a clip reads one contiguous run of frames and decompresses little
                # beyond it (measured: 4.7k random clips/s at 64 px vs 3.0k with 21-frame chunks).
                chunk = max(1, min(4, (1 << 20) // (h * w * c)))
                pix = f.create_dataset("pixels", (total, h, w, c), np.uint8, chunks=(chunk, h, w, c),
                                       compression="gzip", compression_opts=4, fletcher32=True)
                acts = _checksummed(f, "actions", total, ep.actions.shape[1], np.float32)
                sts = _checksummed(f, "states", total, ep.states.shape[1], np.float64)
                total_sum = np.zeros(ep.actions.shape[1])
                total_sq = np.zeros(ep.actions.shape[1])
            s, n = starts[e], lengths[e]
            pix[s:s + n] = ep.pixels
            acts[s:s + n] = ep.actions
            sts[s:s + n] = ep.states
            seeds[e] = ep.seed
            if not held_out[e]:
                valid = ep.actions[:-1].astype(np.float64)
                total_sum += valid.sum(0)
                total_sq += (valid**2).sum(0)
                count += len(valid)
        if pix is None:
            raise DatasetError(f"{path}: no episodes to write")
        mean = total_sum / max(count, 1)
        std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
        f["episodes/start"] = starts
        f["episodes/length"] = lengths
        f["episodes/seed"] = seeds
        f["episodes/held_out"] = held_out
        f["stats/action_mean"] = mean.astype(np.float32)
        f["stats/action_std"] = std.astype(np.float32)
        attrs = dict(meta, format=FORMAT, schema_version=SCHEMA_VERSION, num_episodes=len(lengths),
                     num_frames=total, lewm_bench_version=__version__,
                     created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict) else value


def _checksummed(f: h5py.File, name: str, rows: int, cols: int, dtype: type) -> h5py.Dataset:
    """A (rows, cols) array in ~64 KB chunks, each with a Fletcher-32 checksum (so damage is detectable)."""
    chunk_rows = max(1, min(rows, (1 << 16) // (cols * np.dtype(dtype).itemsize)))
    return f.create_dataset(name, (rows, cols), dtype, chunks=(chunk_rows, cols), fletcher32=True)


class OfflineDataset:
    """A validated, open dataset file. Use :func:`open_dataset` to get one.

    Array columns are read lazily from the HDF5 file (``pixels`` can be larger than memory);
    the episode table and statistics are read once.
    """

    def __init__(self, path: Path, file: h5py.File, meta: DatasetMeta) -> None:
        self.path = path
        self.file = file
        self.meta = meta
        self.episode_start: np.ndarray = file["episodes/start"][:]
        self.episode_length: np.ndarray = file["episodes/length"][:]
        self.episode_seed: np.ndarray = file["episodes/seed"][:]
        self.held_out: np.ndarray = file["episodes/held_out"][:]
        self.action_mean: np.ndarray = file["stats/action_mean"][:]
        self.action_std: np.ndarray = file["stats/action_std"][:]

    @property
    def pixels(self) -> h5py.Dataset:
        return self.file["pixels"]

    @property
    def actions(self) -> h5py.Dataset:
        return self.file["actions"]

    @property
    def states(self) -> h5py.Dataset:
        return self.file["states"]

    @property
    def action_dim(self) -> int:
        return int(self.file["actions"].shape[1])

    def split_episodes(self, split: str) -> np.ndarray:
        """Indices of the episodes in ``split`` (``"train"``, ``"held_out"`` or ``"all"``)."""
        if split == "train":
            return np.flatnonzero(~self.held_out)
        if split == "held_out":
            return np.flatnonzero(self.held_out)
        if split == "all":
            return np.arange(len(self.held_out))
        raise ValueError(f"unknown split {split!r}; valid: train, held_out, all")

    def episode(self, e: int) -> Episode:
        """Load one whole episode into memory."""
        s, n = int(self.episode_start[e]), int(self.episode_length[e])
        return Episode(self.pixels[s:s + n], self.actions[s:s + n], self.states[s:s + n], int(self.episode_seed[e]))

    def summary(self) -> dict[str, Any]:
        """Plain-data description for ``lewm-bench datasets`` and result records."""
        m = self.meta
        lengths = self.episode_length
        return {
            "path": str(self.path), "env": m.env_name, "env_kwargs": m.env_kwargs, "collector": m.collector,
            "collector_params": m.collector_params, "collector_provenance": m.collector_provenance,
            "image_size": m.image_size, "episodes": m.num_episodes,
            "frames": m.num_frames, "held_out_episodes": int(self.held_out.sum()),
            "episode_length_mean": float(lengths.mean()), "episode_length_min": int(lengths.min()),
            "episode_length_max": int(lengths.max()), "action_mean": [round(float(v), 4) for v in self.action_mean],
            "action_std": [round(float(v), 4) for v in self.action_std], "seed": m.seed, "size_mb": round(
                self.path.stat().st_size / 2**20, 1), "schema_version": m.schema_version,
            "lewm_bench_version": m.lewm_bench_version, "created": m.created,
        }

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> OfflineDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dataset(path: str | os.PathLike[str], env: str | None = None) -> OfflineDataset:
    """Open and validate a dataset; every failure is a one-line :class:`DatasetError` naming the file.

    Args:
        path: the ``.h5`` file written by ``lewm-bench collect``.
        env: when given, the short env name the dataset must hold.
    """
    path = Path(path)
    hint = _collect_hint(env)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        extra = f" (an interrupted collection is in {partial}; rerun the same collect command to finish it)" \
            if partial.exists() else ""
        raise DatasetError(f"{path}: no such dataset{extra}; create it with: {hint} --out {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: truncated or corrupt?); "
                           f"delete it and run: {hint} --out {path}") from None
    try:
        a = f.attrs
        if a.get("format") != FORMAT:
            raise DatasetError(f"{path}: not a lewm-bench dataset (no format attribute); run: {hint}")
        version = int(a["schema_version"])
        if version > SCHEMA_VERSION:
            raise DatasetError(f"{path}: written by a newer lewm-bench (schema {version} > {SCHEMA_VERSION}, "
                               f"lewm-bench {a.get('lewm_bench_version')}); upgrade lewm-bench "
                               f"(pip install -U lewm-bench) or recollect with: {hint}")
        raw = {k: a[k].item() if isinstance(a[k], np.generic) else a[k] for k in DatasetMeta.__dataclass_fields__
               if k in a}
        raw.update({k: json.loads(raw[k]) for k in ("env_kwargs", "collector_params", "collector_provenance")
                    if k in raw})
        meta = DatasetMeta(**raw)
        if env is not None and meta.env_name != env:
            raise DatasetError(f"{path}: holds env {meta.env_name!r}, not {env!r}; collect one with: "
                               f"lewm-bench collect --env {env}")
        required = ("pixels", "actions", "states", "episodes/start", "episodes/length", "episodes/seed",
                    "episodes/held_out", "stats/action_mean", "stats/action_std")
        missing = [k for k in required if k not in f]
        if missing:
            raise DatasetError(f"{path}: incomplete dataset (missing {', '.join(missing)}); "
                               f"delete it and run: {hint} --out {path}")
        lengths = f["episodes/length"][:]
        n = meta.num_frames
        if int(lengths.sum()) != n or any(f[k].shape[0] != n for k in ("pixels", "actions", "states")):
            raise DatasetError(f"{path}: inconsistent dataset (episode lengths sum to {int(lengths.sum())}, "
                               f"arrays hold {f['pixels'].shape[0]} frames); delete it and run: {hint} --out {path}")
        return OfflineDataset(path, f, meta)
    except DatasetError:
        f.close()
        raise
    except (KeyError, TypeError, ValueError) as exc:
        f.close()
        raise DatasetError(f"{path}: malformed dataset ({exc}); delete it and run: {hint} --out {path}") from None


class DatasetProblem(NamedTuple):
    """One problem :func:`verify_dataset` found: in an episode's rows of one array, or in the whole file."""

    episode: int | None
    """Episode index (``None``: the problem is not confined to episodes)."""
    array: str | None
    """``"pixels"``, ``"actions"`` or ``"states"`` (``None`` with ``episode``)."""
    detail: str

    def __str__(self) -> str:
        return self.detail if self.episode is None else f"episode {self.episode} ({self.array}): {self.detail}"


def verify_dataset(path: str | os.PathLike[str], progress: bool = False) -> list[DatasetProblem]:
    """Read every chunk of every array of a dataset; return what is damaged (an empty list: intact).

    Beyond :func:`open_dataset`'s structural checks (a failure there is the single problem returned),
    this decompresses and checksums each episode's rows of ``pixels``, ``actions`` and ``states``
    (a read failure names the episode and array: a chunk shared by two episodes names both), finds
    chunks that were never written (they would read as zeros), and checks what the format fixes:
    finite actions with NaN on each episode's last row, finite states, episode starts equal to the
    running sum of lengths. Bit flips are caught by the per-chunk checksums (and, in pixels, by
    gzip's own); in files written before checksums were added, actions and states get the value
    checks only.

    Args:
        path: the ``.h5`` file.
        progress: show a progress bar (one step per episode and array).
    """
    try:
        ds = open_dataset(path)
    except DatasetError as exc:
        return [DatasetProblem(None, None, str(exc))]
    except OSError as exc:  # a corrupt episode table or statistics array
        return [DatasetProblem(None, None, f"{path}: unreadable episode table ({_read_error(exc)}); delete it and "
                                            f"run: {_collect_hint(None)} --out {path}")]
    from tqdm.auto import tqdm

    problems: list[DatasetProblem] = []
    with ds:
        starts, lengths = ds.episode_start, ds.episode_length
        running = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        if len(starts) != len(lengths) or not np.array_equal(starts, running):
            return [DatasetProblem(None, None, f"{path}: episode starts are not the running sum of episode lengths; "
                                               f"the episode table is damaged")]
        bar = tqdm(total=3 * len(lengths), unit="ep", disable=not progress, desc=f"verify {Path(path).name}")
        for name in ("pixels", "actions", "states"):
            array = ds.file[name]
            damaged = _unwritten_episodes(array, starts, lengths)
            for e, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
                if e in damaged:
                    problems.append(DatasetProblem(e, name, f"rows {s}-{s + n - 1} include chunks never written"))
                try:
                    rows = array[s:s + n]
                except OSError as exc:
                    problems.append(DatasetProblem(e, name, f"rows {s}-{s + n - 1} unreadable ({_read_error(exc)})"))
                else:
                    bad = _bad_values(name, rows)
                    if bad:
                        problems.append(DatasetProblem(e, name, f"rows {s}-{s + n - 1}: {bad}"))
                bar.update(1)
        bar.close()
    return problems


def _unwritten_episodes(array: h5py.Dataset, starts: np.ndarray, lengths: np.ndarray) -> set[int]:
    """Episodes whose rows of a chunked ``array`` include a chunk the file never stored."""
    if array.chunks is None or array.shape[0] == 0:
        return set()
    rows_per_chunk = array.chunks[0]
    stored: set[int] = set()
    dsid = array.id
    if hasattr(dsid, "chunk_iter"):
        dsid.chunk_iter(lambda info: stored.add(info.chunk_offset[0]))
    else:
        stored = {dsid.get_chunk_info(i).chunk_offset[0] for i in range(dsid.get_num_chunks())}
    missing = [r for r in range(0, array.shape[0], rows_per_chunk) if r not in stored]
    ends = starts + lengths
    return {int(e) for r in missing for e in np.flatnonzero((starts < r + rows_per_chunk) & (ends > r))}


def _bad_values(name: str, rows: np.ndarray) -> str:
    if name == "actions":
        if not np.all(np.isfinite(rows[:-1])):
            return "non-finite actions before the last frame"
        if not np.all(np.isnan(rows[-1])):
            return "the last frame's action is not NaN (the episode's end is lost)"
    if name == "states" and not np.all(np.isfinite(rows)):
        return "non-finite states"
    return ""


def _read_error(exc: OSError) -> str:
    return str(exc).splitlines()[0].strip() or exc.__class__.__name__
