"""Fault injection: ``kill -9`` at the points where a crash can lose or corrupt work, then the same command again.

``LEWM_BENCH_FAULT=POINT:N`` (lewm_bench/faults.py) kills the process the N-th time it reaches POINT.
After the rerun, the result must equal an uninterrupted run's: weights, optimiser state and log for
training; every job record, the summary and the episodes for a suite.
"""

import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from lewm_bench import cli
from lewm_bench.profiles import PROFILES

TRAIN = ["train", "--env", "two-room", "--profile", "smoke", "--epochs", "3", "--no-progress"]
STEPS = PROFILES["smoke"].train.steps_per_epoch
TIMING = ["clips_per_s", "epoch_time_s"]


def _cli(*args, fault=None, cwd=None):
    env = dict(os.environ, MUJOCO_GL="egl")
    env.pop("LEWM_BENCH_FAULT", None)
    if fault:
        env["LEWM_BENCH_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "lewm_bench.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A smoke Two-Room dataset and an uninterrupted 3-epoch training on it (in this process)."""
    root = tmp_path_factory.mktemp("faults")
    data = root / "two-room.h5"
    assert cli.main(["collect", "--env", "two-room", "--profile", "smoke", "--out", str(data), "--workers", "1",
                     "--no-progress"]) == 0
    assert cli.main([*TRAIN, "--data", str(data), "--out", str(root / "full")]) == 0
    return data, root / "full"


@pytest.mark.parametrize("fault", [f"train-step:{STEPS + 2}", "checkpoint-tmp:2"],
                         ids=["mid-epoch-2", "writing-checkpoint-2"])
def test_train_killed_then_resumed_equals_an_uninterrupted_run(trained, tmp_path, fault):
    data, full = trained
    out = tmp_path / "run"
    killed = _cli(*TRAIN, "--data", str(data), "--out", str(out), fault=fault)
    assert killed.returncode == -9, killed.stderr
    state = torch.load(out / "checkpoint.pt", weights_only=False)  # the previous checkpoint is intact
    assert state["epoch"] == 1 and not (out / "summary.json").exists()
    if fault.startswith("checkpoint-tmp"):
        assert list(out.glob(".checkpoint.pt.*.tmp"))  # the half-written one is there; the rerun removes it
    resumed = _cli(*TRAIN, "--data", str(data), "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = (torch.load(p / "checkpoint.pt", weights_only=False) for p in (full, out))
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=0, atol=0, msg=k)
    for (ka, va), (kb, vb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        assert ka == kb
        for name in va:
            torch.testing.assert_close(vb[name], va[name], rtol=0, atol=0)
    pd.testing.assert_frame_equal(pd.read_csv(full / "log.csv").drop(columns=TIMING),
                                  pd.read_csv(out / "log.csv").drop(columns=TIMING))
    assert not list(out.parent.glob("**/.*.tmp")) and not list(out.parent.glob("*.lock"))


def test_suite_killed_between_jobs_then_rerun_equals_an_uninterrupted_run(tmp_path):
    suite = ["run", "--suite", "smoke", "--envs", "two-room", "--agents", "random", "--workers", "1",
             "--no-progress"]
    assert cli.main([*suite, "--out", str(tmp_path / "full")]) == 0
    killed = _cli(*suite, "--out", str(tmp_path / "part"), fault="suite-job-done:1")  # after the collection
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "part.lock").exists()  # left by the kill; the rerun takes it over
    rerun = _cli(*suite, "--out", str(tmp_path / "part"))
    assert rerun.returncode == 0, rerun.stderr
    assert "1 skipped" in rerun.stdout  # the collection survived the kill
    summary = [pd.read_csv(tmp_path / r / "summary.csv") for r in ("full", "part")]
    summary = [df.drop(columns=[c for c in df.columns if "time" in c and c != "timed_call"]) for df in summary]
    pd.testing.assert_frame_equal(*summary)
    episodes = [(tmp_path / r / "eval/two-room/random-smoke-seed0/episodes.csv").read_bytes() for r in ("full", "part")]
    assert episodes[0] == episodes[1]
    assert not (tmp_path / "part.lock").exists()
