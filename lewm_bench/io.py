"""Atomic writes of result files: a temporary file in the same folder, then a rename.

A reader (or a rerun after a kill) sees either the previous file or the complete new one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from lewm_bench.errors import LewmBenchError


@contextmanager
def atomic_path(path: str | os.PathLike[str], fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed to ``path``.

    The parent folder is created. On an exception the temporary file is removed and ``path`` is
    untouched. ``fsync`` flushes the file to disk before the rename (checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str], min_age_s: float = 0.0) -> None:
    """Delete the temporary files of :func:`atomic_path` that a killed writer left in ``folder``.

    Call only while holding ``folder``'s lock (:func:`lewm_bench.locks.lock_output`): no live writer then
    has a temporary file there. Where writers outside the lock may still be live (the jobs a suite
    submitted to other processes write their records in ``jobs/``), ``min_age_s`` spares younger files.
    """
    folder = Path(folder)
    if folder.is_dir():
        now = time.time()
        for stale in folder.glob(".*.tmp"):
            try:
                if now - stale.stat().st_mtime >= min_age_s:
                    stale.unlink(missing_ok=True)
            except FileNotFoundError:  # its writer renamed it meanwhile
                pass


def read_json(path: str | os.PathLike[str], fix: str) -> Any:
    """The JSON in ``path``; a truncated or garbage file is a one-line :class:`LewmBenchError` naming it.

    ``fix`` is the advice appended to the message (what to delete or rerun).
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise LewmBenchError(f"{path}: not valid JSON (truncated or overwritten: {exc.__class__.__name__}); "
                             f"{fix}") from None


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (non-JSON values via ``str``), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str))


def write_csv(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``table`` as CSV without the index, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (Markdown, reports), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def upsert_csv(path: str | os.PathLike[str], rows: pd.DataFrame, keys: dict[str, Any]) -> None:
    """Replace the rows of ``path`` whose ``keys`` columns equal ``keys`` by ``rows``, atomically."""
    path = Path(path)
    if path.exists():
        old = pd.read_csv(path)
        same = pd.Series(True, index=old.index)
        for k, v in keys.items():  # a row without a key column (an older file) never matches
            same &= old[k].astype(str) == str(v) if k in old else False
        rows = pd.concat([old[~same], rows], ignore_index=True)
    write_csv(path, rows)


def check_output_folder(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Fail with a one-line :class:`LewmBenchError` unless ``path`` is (or can be created as) a writable folder.

    Called before any work starts, so that a run never computes for an hour and then fails to save:
    ``path`` must not be a file nor lie under one, and it (or its nearest existing parent) must be
    writable. ``option`` names the command-line option that chose the path, for the advice.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LewmBenchError(f"{path} is an existing file; expected a folder to write into: remove the file or "
                             f"choose another {option}")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LewmBenchError(f"{path} lies under the file {existing}; expected a folder path: choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LewmBenchError(f"{existing} is not writable (needed for {path}); expected a writable folder: make it "
                             f"writable (chmod u+w {existing}) or choose another {option}")
