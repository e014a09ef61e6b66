"""Where every stage writes, relative to one run root (``runs`` by default).

``ROOT/data/ENV/<dataset>.h5``, ``ROOT/train/ENV/AGENT-PROFILE-seedS/``, ``ROOT/eval/...``,
``ROOT/analysis/...``, ``ROOT/summary.csv``, ``ROOT/report/``. A training run records its dataset
relative to its own folder (:class:`~lewm_bench.training.run_config.DataRecord`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

Stage = Literal["train", "eval", "analysis"]
DEFAULT_ROOT = Path("runs")


def run_name(stage: Stage, env: str, agent: str, profile: str, seed: int) -> str:
    """``STAGE/ENV/AGENT-PROFILE-seedS``: one (env, agent, profile, seed)'s run of a stage (its folder under the root,
    and its name in an experiment logger)."""
    return f"{stage}/{env}/{agent}-{profile}-seed{seed}"


def run_dir(stage: Stage, env: str, agent: str, profile: str, seed: int,
            root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/STAGE/ENV/AGENT-PROFILE-seedS``: one (env, agent, profile, seed)'s folder of a stage."""
    return Path(root) / run_name(stage, env, agent, profile, seed)


def data_root(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/data``: where the suite's datasets live."""
    return Path(root) / "data"


def summary_path(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Path:
    """``ROOT/summary.csv``: one row per finished evaluation."""
    return Path(root) / "summary.csv"
