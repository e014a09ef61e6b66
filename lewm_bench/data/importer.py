"""Import a stable-worldmodel HDF5 dataset (the authors' ``tworoom``, ``pusht_expert_train``, ...) into our schema.

The source layout, read from stable-worldmodel 0.1.1 (``data/formats/hdf5.py``, ``HDF5Writer``): one
``.h5`` file with one dataset per column, all columns concatenated along the first axis, plus
``ep_len`` (int, E) and ``ep_offset`` (int64, E); episode ``e`` owns rows
``ep_offset[e] : ep_offset[e] + ep_len[e]``. ``pixels`` is uint8 (N, H, W, 3); ``action`` is (N, A)
with the action taken *after* the frame of the same row (``World.collect`` rotates the reset's
placeholder action to the episode's end), which is our schema's convention; state-like columns are
``state`` (PushT), ``proprio`` (Two-Room) or ``observation`` (OGBench, DMC).

The import keeps every row, sets each episode's last action to NaN (no action follows the last
frame), splits *episodes* into train and held-out with :func:`~lewm_bench.data.dataset.held_out_mask`
(the reference code splits clips, so its validation clips share episodes with training), computes the
action statistics over the training split, and records where the data came from: the source path,
size and SHA-256, its layout and the column names in ``collector_params`` (part of the dataset's
identity), and the import time in the ``provenance`` attribute.

Our ``states`` column must hold the env's physical state (evaluation resets the env to stored start
and goal states), so a source column is taken only when its width is the env's ``state_dim``; that the
coordinates mean the same thing as ours is not checked (see the README).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

try:  # registers the extra compression filters stable-worldmodel's reader imports (optional here)
    import hdf5plugin  # noqa: F401
except ImportError:
    pass

from lewm_bench import __version__
from lewm_bench.data.dataset import FORMAT, Episode, open_dataset, write_dataset
from lewm_bench.errors import DatasetError
from lewm_bench.locks import lock_output

SOURCE_LAYOUT = "stable-worldmodel-hdf5"
"""How the import records the source format (stable-worldmodel 0.1.1's ``HDF5Writer``)."""
STATE_KEYS = ("state", "proprio", "observation")
"""Source columns tried, in order, for our ``states`` (the first with the env's state width)."""
STATE_SCALE = {"two-room": 64 / 224}
"""Source state -> our state, per env (a factor). stable-worldmodel's TwoRoom-v1 lays its scene out in 224-px
units (its ``envs/two_room/env.py``: "scale = 224/64 = 3.5", wall centre 112, door centre 49 and half-size 14,
speed 5), ours in a 64-unit canvas (wall centre 32, door 10-18, speed 1.43). PushT's state is gym-pusht's in both."""
RENDER_CHECK_ROWS = 8
"""Rows (evenly spaced over the file) on which :func:`render_agreement` compares frames with our rendering."""
_NAME_HINTS = (("pusht", "pusht"), ("tworoom", "two-room"), ("two_room", "two-room"), ("two-room", "two-room"),
               ("cube", "cube"))


@dataclass(frozen=True)
class ImportedDataset:
    """What :func:`import_dataset` wrote."""

    path: Path
    env: str
    episodes: int
    held_out_episodes: int
    frames: int
    image_size: int
    source_sha256: str
    render_check: dict[str, float]
    """:func:`render_agreement` on the written dataset."""


def guess_env(source: str | os.PathLike[str]) -> str | None:
    """Our env name for an official dataset file name (``pusht_expert_train.h5`` -> ``pusht``), or None."""
    name = Path(source).name.lower()
    for hint, env in _NAME_HINTS:
        if hint in name:
            return env
    return None


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def import_dataset(source: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                   env: str | None = None, held_out_fraction: float = 0.1, seed: int = 0,
                   state_key: str | None = None, data_root: str | os.PathLike[str] = "runs/data",
                   force: bool = False) -> ImportedDataset:
    """Convert a stable-worldmodel HDF5 dataset into a lewm-bench dataset (see the module docstring).

    Args:
        source: the ``.h5`` file (stable-worldmodel layout).
        out: our dataset file (default ``DATA_ROOT/ENV/swm-<source stem>.h5``).
        env: our env the data is for (default: guessed from the file name).
        held_out_fraction: fraction of episodes held out for evaluation.
        seed: seed of the train/held-out split.
        state_key: source column for our ``states`` (default: the first of :data:`STATE_KEYS` whose
            width is the env's ``state_dim``).
        data_root: folder of the default ``out``.
        force: replace an existing file at ``out``.

    Raises:
        DatasetError: the source is missing, not HDF5, not in the layout, or does not fit the env.
    """
    from lewm_bench.envs import env_spec

    source = Path(source)
    if not source.is_file():
        raise DatasetError(f"{source}: no such file; give the path of a stable-worldmodel .h5 dataset "
                           "(e.g. tworoom.h5, downloaded beforehand)")
    env_name = env or guess_env(source)
    if env_name is None:
        raise DatasetError(f"{source}: cannot tell the env from the file name; pass --env (pusht, two-room, cube)")
    spec = env_spec(env_name)
    if not 0.0 <= held_out_fraction < 1.0:
        raise DatasetError(f"--held-out-fraction must be in [0, 1); got {held_out_fraction}")
    out = Path(out) if out is not None else Path(data_root) / spec.name / f"swm-{source.stem}.h5"
    if out.resolve() == source.resolve():
        raise DatasetError(f"{out}: the output would overwrite the source; pass another --out")
    try:
        f = h5py.File(source, "r")
    except OSError as exc:
        raise DatasetError(f"{source}: not a readable HDF5 file ({type(exc).__name__}); expected a "
                           "stable-worldmodel .h5 dataset (columns plus ep_len and ep_offset)") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with f, lock_output(out):
        if out.exists() and not force:
            raise DatasetError(f"{out}: already exists; pass --force to replace it, or another --out")
        cols = _check_layout(source, f, spec, state_key)
        lengths = cols.lengths
        sha = file_sha256(source)
        size = int(source.stat().st_size)
        params = {"source_layout": SOURCE_LAYOUT, "source_name": source.name, "source_bytes": size,
                  "source_sha256": sha, "pixels_key": "pixels", "action_key": "action", "state_key": cols.state_key,
                  "state_scale": cols.state_scale}
        provenance = {"source_path": str(source.resolve()), "source_bytes": size, "source_sha256": sha,
                      "source_layout": SOURCE_LAYOUT, "source_episodes": int(len(lengths)),
                      "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "lewm_bench_version": __version__}
        # evaluation renders the env with these: the frame size, and the options of the profile of that size
        sizes = next(spec.data_for(p) for p in ("paper", "cpu", "smoke")
                     if spec.data_for(p).image_size == cols.image_size)
        env_kwargs = dict(sizes.env_kwargs, image_size=cols.image_size)
        n = int(f["pixels"].shape[0])
        rows = np.unique(np.linspace(0, n - 1, min(RENDER_CHECK_ROWS, n)).round().astype(np.int64))
        states = np.asarray(f[cols.state_key][rows], np.float64) * cols.state_scale
        provenance["render_check"] = render_agreement(spec.name, env_kwargs, f["pixels"][rows], states)
        meta = {"env_name": spec.name, "env_id": spec.gym_id, "env_kwargs": env_kwargs, "image_size": cols.image_size,
                "collector": "stable-worldmodel", "collector_params": params, "seed": int(seed),
                "max_steps": int(lengths.max()) - 1, "held_out_fraction": float(held_out_fraction),
                "provenance": provenance}
        write_dataset(out, meta, _episodes(source, f, cols), lengths)
    with open_dataset(out, spec.name) as ds:
        return ImportedDataset(out, spec.name, ds.meta.num_episodes, int(ds.held_out.sum()), ds.meta.num_frames,
                               ds.meta.image_size, sha, provenance["render_check"])


def render_agreement(env: str, env_kwargs: dict, frames: np.ndarray, states: np.ndarray) -> dict[str, float]:
    """Do the stored states describe the stored frames in our env? Mean absolute pixel difference (0-255)
    between a frame and our env's rendering of its own state, and of another row's state.

    Own far below other: the states and frames agree. Own close to other: the state column does not place
    the scene as our env does (another coordinate system, or another scene), and evaluation, which resets
    the env to stored states, would set different tasks. Renderers differ in detail, so own is not 0 on
    data rendered by another implementation.
    """
    from lewm_bench.envs import make_env

    sim = make_env(env, **env_kwargs)
    try:
        sim.reset(seed=0)
        rendered = np.stack([sim.render_state(s) for s in states]).astype(np.float64)
    finally:
        sim.close()
    frames = np.asarray(frames, np.float64)
    other = np.roll(rendered, len(states) // 2, 0)
    return {"rows": int(len(states)), "own_state_mad": round(float(np.abs(rendered - frames).mean()), 3),
            "other_state_mad": round(float(np.abs(other - frames).mean()), 3)}


@dataclass(frozen=True)
class _Columns:
    lengths: np.ndarray
    offsets: np.ndarray
    state_key: str
    image_size: int
    state_scale: float


def _check_layout(source: Path, f: h5py.File, spec, state_key: str | None) -> _Columns:
    """The episode table and the chosen columns, after checking everything the import relies on."""
    if f.attrs.get("format") == FORMAT:
        raise DatasetError(f"{source}: already a lewm-bench dataset; use it directly (--data {source})")
    present = sorted(f.keys())
    missing = [k for k in ("ep_len", "ep_offset", "pixels", "action") if k not in f]
    if missing:
        raise DatasetError(f"{source}: not in stable-worldmodel's HDF5 layout (missing {', '.join(missing)}; has "
                           f"{', '.join(present) or 'nothing'}); expected columns pixels, action and the episode "
                           "table ep_len, ep_offset")
    lengths = np.asarray(f["ep_len"][:], np.int64)
    offsets = np.asarray(f["ep_offset"][:], np.int64)
    if lengths.ndim != 1 or lengths.shape != offsets.shape or len(lengths) == 0:
        raise DatasetError(f"{source}: ep_len {lengths.shape} and ep_offset {offsets.shape} must be two 1-D arrays "
                           "of the same non-zero length (one entry per episode)")
    pixels, action = f["pixels"], f["action"]
    n = pixels.shape[0] if pixels.ndim else 0
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8 or pixels.shape[1] != pixels.shape[2]:
        raise DatasetError(f"{source}: pixels is {pixels.dtype} {pixels.shape}; expected uint8 (N, S, S, 3) square "
                           "RGB frames")
    sizes = sorted({spec.data_for(p).image_size for p in ("paper", "cpu", "smoke")})
    image_size = int(pixels.shape[1])
    if image_size not in sizes:
        raise DatasetError(f"{source}: frames are {image_size} px; env {spec.name} is rendered at "
                           f"{', '.join(map(str, sizes))} px (its profiles' sizes); resize the frames to one of them")
    if action.ndim != 2 or action.shape[1] != spec.action_dim or action.shape[0] != n:
        raise DatasetError(f"{source}: action is {action.shape}; env {spec.name} needs ({n}, {spec.action_dim}) "
                           "(one env action per frame); pass the --env the data was collected in")
    if (lengths < 2).any() or (offsets < 0).any() or int((offsets + lengths).max()) > n:
        raise DatasetError(f"{source}: episode table does not fit the {n} rows (episodes need >= 2 frames and "
                           "ep_offset + ep_len <= rows); the file is damaged or not from stable-worldmodel")
    keys = [state_key] if state_key is not None else [k for k in STATE_KEYS if k in f]
    widths = {k: tuple(f[k].shape) for k in keys if k in f}
    chosen = [k for k in keys if k in f and f[k].ndim == 2 and f[k].shape == (n, spec.state_dim)]
    if not chosen:
        found = ", ".join(f"{k} {w}" for k, w in widths.items()) or "none of " + ", ".join(keys)
        raise DatasetError(f"{source}: no state column of width {spec.state_dim} (env {spec.name}'s state_dim) "
                           f"with {n} rows (found {found}); pass --state-key with a column holding the env's "
                           "physical state")
    return _Columns(lengths, offsets, chosen[0], image_size, STATE_SCALE.get(spec.name, 1.0))


def _episodes(source: Path, f: h5py.File, cols: _Columns) -> Iterator[Episode]:
    """The source's episodes in our convention, one at a time (the episode index serves as its seed)."""
    pixels, action, state = f["pixels"], f["action"], f[cols.state_key]
    for e, (o, n) in enumerate(zip(cols.offsets.tolist(), cols.lengths.tolist())):
        try:
            frames, acts, states = pixels[o:o + n], np.asarray(action[o:o + n], np.float32), state[o:o + n]
        except OSError as exc:
            raise DatasetError(f"{source}: episode {e} unreadable ({str(exc).splitlines()[0]}); a compression "
                               "filter outside HDF5's built-ins needs `pip install hdf5plugin`, otherwise the "
                               "file is damaged") from None
        acts[-1] = np.nan
        if not np.isfinite(acts[:-1]).all():
            raise DatasetError(f"{source}: episode {e} has non-finite actions before its last frame (rows "
                               f"{o}-{o + n - 2}); the file is damaged")
        states = np.asarray(states, np.float64) * cols.state_scale
        if not np.isfinite(states).all():
            raise DatasetError(f"{source}: episode {e} has non-finite {cols.state_key} values; the file is damaged")
        yield Episode(frames, acts, states, e)


def provenance_of(path: str | os.PathLike[str]) -> dict | None:
    """The ``provenance`` attribute an import recorded in a dataset (None for collected datasets)."""
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("provenance")
    return json.loads(raw) if raw is not None else None


__all__ = ["ImportedDataset", "RENDER_CHECK_ROWS", "SOURCE_LAYOUT", "STATE_KEYS", "STATE_SCALE", "file_sha256",
           "guess_env", "import_dataset", "provenance_of", "render_agreement"]
