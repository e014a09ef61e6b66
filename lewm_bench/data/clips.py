"""Training clips: ``history + 1`` frames ``frameskip`` steps apart with z-scored action blocks.

For a clip starting at frame ``t`` of an episode, frame ``i`` (``i = 0..history``) is
``t + i * frameskip`` and action block ``i`` (``i = 0..history-1``) concatenates the ``frameskip``
actions taken between frames ``i`` and ``i + 1`` (``actions[t + i*fs : t + (i+1)*fs]``), each
z-scored per dimension with the training-split statistics stored in the dataset. A clip start is
valid when its last frame lies inside the episode: ``t + history * frameskip <= length - 1``.
With the paper's history 3 and frameskip 5 a clip spans 16 frames (15 env steps) and 2-D
actions become 10-D blocks.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.dataset import OfflineDataset, open_dataset
from lewm_bench.errors import DatasetError

IN_MEMORY_LIMIT_BYTES = 8 * 2**30


class Clip(NamedTuple):
    """One training sample (``DataLoader`` stacks each field along a new batch axis)."""

    frames: torch.Tensor
    """(history + 1, 3, H, W) uint8."""
    actions: torch.Tensor
    """(history, frameskip * action_dim) float32, z-scored."""
    states: torch.Tensor
    """(history + 1, state_dim) float32 physical states of the frames."""
    episode: int
    start: int
    """Index of the first frame within its episode."""


def unreadable(path: str | os.PathLike[str], episode: int | None, array: str, exc: OSError) -> DatasetError:
    """The one-line error for a read that failed inside a dataset that opened fine (a damaged chunk)."""
    where = f"episode {episode} ({array})" if episode is not None else array
    detail = (str(exc).splitlines() or [type(exc).__name__])[0].strip()
    return DatasetError(f"{path}: {where} unreadable ({detail}); the file is damaged: list every damaged episode with "
                        f"`lewm-bench datasets --verify {path}`, then delete it and recollect")


def clip_starts(lengths: np.ndarray, history: int, frameskip: int) -> tuple[np.ndarray, np.ndarray]:
    """All valid (episode position, start frame) pairs for episodes of the given lengths, in order."""
    span = history * frameskip
    counts = np.maximum(np.asarray(lengths) - span, 0)
    ep = np.repeat(np.arange(len(counts)), counts)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else np.zeros(0, np.int64)
    start = np.arange(int(counts.sum())) - np.repeat(offsets, counts)
    return ep.astype(np.int64), start.astype(np.int64)


class ClipDataset(Dataset[Clip]):
    """PyTorch dataset of clips from one split of an offline dataset.

    Args:
        path: dataset file written by ``lewm-bench collect``.
        split: ``"train"``, ``"held_out"`` or ``"all"`` (episodes, never clips, are split).
        history: context frames; each clip has ``history + 1`` frames.
        frameskip: env steps between kept frames (and actions per block).
        env: when given, the env the dataset must hold.
        in_memory: load the split's frames into RAM once (fast random access). ``None`` (default)
            does so when they fit in ``IN_MEMORY_LIMIT_BYTES``; ``False`` reads every clip from disk.
    """

    def __init__(self, path: str | os.PathLike[str], split: str = "train", history: int = 3, frameskip: int = 5,
                 env: str | None = None, in_memory: bool | None = None) -> None:
        if history < 1 or frameskip < 1:
            raise ValueError(f"history and frameskip must be >= 1; got history={history}, frameskip={frameskip}")
        self.path, self.history, self.frameskip = str(path), history, frameskip
        with open_dataset(path, env) as ds:
            self.meta = ds.meta
            self.episodes = ds.split_episodes(split)
            lengths = ds.episode_length[self.episodes]
            self._file_start = ds.episode_start[self.episodes]
            codec = ActionCodec.from_dataset(ds, frameskip)
            self.action_mean, self.action_std = codec.mean, codec.std
            self.clip_episode, self.clip_start = clip_starts(lengths, history, frameskip)
            if len(self.clip_episode) == 0:
                raise DatasetError(f"{path}: split {split!r} has no episode longer than history*frameskip = "
                                   f"{history * frameskip} steps; collect longer episodes (--max-steps) or more "
                                   "of them")
            frame_bytes = int(np.prod(ds.pixels.shape[1:]))
            if in_memory is None:
                in_memory = int(lengths.sum()) * frame_bytes <= IN_MEMORY_LIMIT_BYTES
            self.in_memory = in_memory
            rows = np.concatenate([np.arange(s, s + n) for s, n in zip(self._file_start, lengths)])
            # actions and states are small: always in memory, already z-scored
            try:
                self._actions = codec.normalise(ds.actions[:][rows])
                self._states = ds.states[:][rows].astype(np.float32)
            except OSError as exc:
                raise unreadable(path, None, "actions or states", exc) from None
            self._mem_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            self._pixels = None
            if in_memory:
                self._pixels = np.empty((len(rows), *ds.pixels.shape[1:]), np.uint8)
                for e, s, m, n in zip(self.episodes, self._file_start, self._mem_start, lengths):
                    try:
                        ds.pixels.read_direct(self._pixels, np.s_[s:s + n], np.s_[m:m + n])
                    except OSError as exc:
                        raise unreadable(path, int(e), "pixels", exc) from None
        self._file: object | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.clip_episode)

    @property
    def frame_states(self) -> np.ndarray:
        """(frames, state_dim) float32 physical states of every frame of the split (e.g. for statistics)."""
        return self._states

    def __getitem__(self, i: int) -> Clip:
        e, t = int(self.clip_episode[i]), int(self.clip_start[i])
        fs, h = self.frameskip, self.history
        base = int(self._mem_start[e]) + t
        frame_rows = slice(base, base + h * fs + 1, fs)
        if self._pixels is not None:
            frames = self._pixels[frame_rows]
        else:
            file_base = int(self._file_start[e]) + t
            # one contiguous read, then the stride in numpy: h5py's strided selection is ~10x slower
            try:
                frames = self._disk_pixels()[file_base:file_base + h * fs + 1][::fs]
            except OSError as exc:  # a damaged chunk met mid-training: name the episode, not an HDF5 stack
                raise unreadable(self.path, int(self.episodes[e]), "pixels", exc) from None
        actions = self._actions[base:base + h * fs].reshape(h, -1)
        return Clip(torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
                    torch.from_numpy(actions), torch.from_numpy(self._states[frame_rows]),
                    int(self.episodes[e]), t)

    def _disk_pixels(self):
        import h5py

        if self._file is None or self._pid != os.getpid():  # one handle per DataLoader worker
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file["pixels"]  # type: ignore[index]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        return state


__all__ = ["Clip", "ClipDataset", "OfflineDataset", "clip_starts"]
