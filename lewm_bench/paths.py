"""Where every stage writes, relative to one run root (``runs`` by default).

``ROOT/data/ENV/<dataset>.h5``, ``ROOT/train/ENV/AGENT-PROFILE-seedS/``, ``ROOT/eval/...``,
``ROOT/analysis/...``, ``ROOT/summary.csv``, ``ROOT/report/``. A suite folder is self-contained:
paths recorded inside it are relative to its root, so it can be moved or copied.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Stage = Literal["train", "eval", "analysis"]
DEFAULT_ROOT = Path("runs")


def run_dir(stage: Stage, env: str, agent: str, profile: str, seed: int,
            root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/STAGE/ENV/AGENT-PROFILE-seedS``: one (env, agent, profile, seed)'s folder of a stage."""
    return Path(root) / stage / env / f"{agent}-{profile}-seed{seed}"


def data_root(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/data``: where the suite's datasets live."""
    return Path(root) / "data"


def summary_path(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/summary.csv``: one row per finished evaluation."""
    return Path(root) / "summary.csv"


def relative_to_root(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """``path`` relative to ``root`` when it lies under it (so the folder can move), else absolute."""
    path, root = Path(path).resolve(), Path(root).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def resolve_from_root(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """A recorded path: absolute as is, relative ones from ``root``."""
    path = Path(path)
    return path if path.is_absolute() else Path(root) / path
