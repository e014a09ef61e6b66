"""Atomic writes of result files: a temporary file in the same folder, then a rename.

A reader (or a rerun after a kill) sees either the previous file or the complete new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


def write_json(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (non-JSON values via ``str``), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, path)


def write_csv(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write ``table`` as CSV without the index, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (Markdown, reports), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=dpi)
    os.replace(tmp, path)


def upsert_csv(path: str | os.PathLike[str], rows: pd.DataFrame, keys: dict[str, Any]) -> None:
    """Replace the rows of ``path`` whose ``keys`` columns equal ``keys`` by ``rows``, atomically."""
    path = Path(path)
    if path.exists():
        old = pd.read_csv(path)
        same = pd.Series(True, index=old.index)
        for k, v in keys.items():
            same &= old[k].astype(str) == str(v)
        rows = pd.concat([old[~same], rows], ignore_index=True)
    write_csv(path, rows)
