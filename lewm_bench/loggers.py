"""Optional experiment logging: TensorBoard or Weights & Biases beside the CSV files.

The CSV files (a training run's ``log.csv``, an evaluation's ``result.json`` and the root's
``summary.csv``) are always written and are the source of truth; ``--logger tensorboard`` or
``--logger wandb`` mirrors the same rows to a tracker so that a user can browse many runs:

- training: every ``log.csv`` row (row 0 is before training) at its optimiser step, and the final
  summary (train time, parameters, ...) when the run finishes;
- evaluation: the figures of the ``summary.csv`` row (success rate and interval, planning time, ...).

TensorBoard event files go to ``RUN/tensorboard/``; wandb runs go to ``RUN/wandb/`` and are offline
unless ``WANDB_MODE`` says otherwise (``wandb sync RUN/wandb/offline-run-*`` uploads them later). The
wandb run id is derived from the run folder, so a resumed training appends to the same wandb run.
Neither package is a dependency: asking for a logger whose package is missing is a clear error
before any work starts.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from lewm_bench.errors import LewmBenchError

LoggerName = Literal["csv", "tensorboard", "wandb"]
LOGGERS: tuple[str, ...] = ("csv", "tensorboard", "wandb")
_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


class ExperimentLogger(Protocol):
    """Where a run's rows are mirrored to (besides its CSV files)."""

    def log_row(self, row: Mapping[str, Any], step: int) -> None:
        """One row of metrics (non-numbers are ignored) at ``step``."""

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """The run's final figures (nested mappings are flattened as ``a/b``)."""

    def close(self) -> None:
        """Flush and release the logger."""


class _NoLogger:
    """``csv``: the CSV files are all there is."""

    def log_row(self, row: Mapping[str, Any], step: int) -> None:
        pass

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


class _TensorBoardLogger:
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log_row(self, row: Mapping[str, Any], step: int) -> None:
        for key, value in _numbers(row).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        for key, value in _numbers(summary).items():
            self.writer.add_scalar("summary/" + key, value, 0)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _WandbLogger:
    def __init__(self, run_dir: Path, name: str, config: Mapping[str, Any]) -> None:
        import wandb

        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lewm-bench"), name=name, id=run_id,
                              dir=str(run_dir), mode=os.environ.get("WANDB_MODE", "offline"), config=dict(config),
                              resume="allow")

    def log_row(self, row: Mapping[str, Any], step: int) -> None:
        self.run.log(_numbers(row), step=step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self.run.summary.update(_numbers(summary))

    def close(self) -> None:
        self.run.finish()


def check_logger(name: str) -> None:
    """Fail before any work when ``name`` is unknown or its package is not installed."""
    if name not in LOGGERS:
        raise LewmBenchError(f"unknown logger {name!r}; valid loggers: {', '.join(LOGGERS)}")
    package = _PACKAGES.get(name)
    if package is not None:
        import importlib.util

        if importlib.util.find_spec(package) is None:
            raise LewmBenchError(f"--logger {name} needs the {package!r} package, which is not installed: "
                                 f"pip install {package} (or use --logger csv)")


def make_logger(name: str, run_dir: str | os.PathLike[str], run_name: str,
                config: Mapping[str, Any] | None = None) -> ExperimentLogger:
    """The logger ``name`` (``csv``: none beyond the CSV files) for the run folder ``run_dir``."""
    check_logger(name)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if name == "tensorboard":
        return _TensorBoardLogger(run_dir)
    if name == "wandb":
        return _WandbLogger(run_dir, run_name, config or {})
    return _NoLogger()


def _numbers(row: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of ``row`` (nested mappings flattened as ``a/b``); strings and None are left out."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            out.update(_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[prefix + str(key)] = float(value)
    return out
