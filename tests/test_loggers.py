"""Experiment loggers (lewm_bench.loggers): mirrors of the CSV rows, and clear errors when a package is missing."""

import sys
import types

import pytest

from lewm_bench.errors import LewmBenchError
from lewm_bench.loggers import check_logger, make_logger


def test_tensorboard_logger_writes_the_rows_and_the_summary(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = make_logger("tensorboard", tmp_path, "train/two-room/lewm")
    logger.log_row({"epoch": 0, "loss": 1.5, "note": "text is left out", "missing": None}, step=0)
    logger.log_row({"epoch": 1, "loss": 0.5}, step=200)
    logger.log_summary({"train_time_s": 12.0, "params": {"trainable": 10}, "final": {"loss": 0.5}})
    logger.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(0, 1.5), (200, 0.5)]
    assert "note" not in events.Tags()["scalars"] and "missing" not in events.Tags()["scalars"]
    assert events.Scalars("summary/params/trainable")[0].value == 10


def test_wandb_logger_is_offline_unless_told_and_resumes_the_same_run(tmp_path, monkeypatch):
    calls = []

    class Run:
        summary: dict = {}

        def log(self, row, step):
            calls.append(("log", row, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or Run())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object())
    monkeypatch.delenv("WANDB_MODE", raising=False)
    for _ in range(2):  # a resumed training opens the same run
        logger = make_logger("wandb", tmp_path / "run", "train/two-room/lewm", {"lr": 1e-3})
        logger.log_row({"loss": 0.25, "epoch": 1}, step=4)
        logger.log_summary({"success_rate": 0.5})
        logger.close()
    inits = [c[1] for c in calls if c[0] == "init"]
    assert inits[0]["mode"] == "offline" and inits[0]["config"] == {"lr": 1e-3} and inits[0]["resume"] == "allow"
    assert inits[0]["id"] == inits[1]["id"] and inits[0]["dir"] == str(tmp_path / "run")
    assert ("log", {"loss": 0.25, "epoch": 1.0}, 4) in calls and Run.summary == {"success_rate": 0.5}


def test_unknown_or_missing_loggers_fail_before_any_work(monkeypatch):
    with pytest.raises(LewmBenchError, match="unknown logger 'mlflow'; valid loggers: csv, tensorboard, wandb"):
        check_logger("mlflow")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(LewmBenchError, match="needs the 'wandb' package, which is not installed: pip install wandb"):
        check_logger("wandb")
    check_logger("csv")  # needs nothing
