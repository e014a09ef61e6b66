import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.errors import LewmBenchError
from lewm_bench.models.lewm import LeWM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import LossTerms
from lewm_bench.training import trainer
from lewm_bench.training.checkpoint import load_checkpoint, load_state_checked
from lewm_bench.training.config import TrainConfig
from lewm_bench.training.trainer import TrainingStopped, log_columns, lr_at, train

SMOKE = PROFILES["smoke"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                        image_size=16)
    return collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)


def _train(data, out, **kw):
    tcfg = kw.pop("train_config", SMOKE.train)
    return train("two-room", SMOKE, data=data, out=out, progress=False, train_config=tcfg, **kw)


def test_lr_schedule_warms_up_then_decays_per_step():
    cfg = TrainConfig(lr=1.0, warmup_fraction=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[55] == pytest.approx(0.5, abs=0.02) and lrs[99] < 0.01
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_smoke_training_lowers_the_loss_and_reloads_identically(data, tmp_path):
    tcfg = dataclasses.replace(SMOKE.train, epochs=3, steps_per_epoch=12)
    result = _train(data, tmp_path / "run", train_config=tcfg)
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert list(log.columns) == log_columns(("pred_loss", "sigreg")) and list(log.epoch) == [0, 1, 2, 3]
    assert log.loss.iloc[-1] < log.loss.iloc[1]
    assert result.finished and result.summary["steps"] == 36
    ckpt = load_checkpoint(tmp_path / "run", "lewm", "two-room")
    model = LeWM(LeWM.presets["smoke"], 16, ckpt["config"]["data"]["action_dim"])
    load_state_checked(model, ckpt["model"], "test")
    assert ckpt["config"]["data"]["action_mean"] and ckpt["config"]["train"]["steps_per_epoch"] == 12
    frames = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)
    model.eval()
    again = LeWM(LeWM.presets["smoke"], 16, 10)
    load_state_checked(again, torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"], "t")
    torch.testing.assert_close(model.encode(frames), again.eval().encode(frames), rtol=0, atol=0)
    # a finished run is not retrained
    assert not _train(data, tmp_path / "run", train_config=tcfg).finished


def test_resume_continues_exactly(data, tmp_path, monkeypatch):
    tcfg = dataclasses.replace(SMOKE.train, epochs=3, steps_per_epoch=5)
    _train(data, tmp_path / "full", train_config=tcfg)
    real = trainer._epoch_order

    def interrupted(n, needed, seed, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return real(n, needed, seed, epoch)

    monkeypatch.setattr(trainer, "_epoch_order", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _train(data, tmp_path / "part", train_config=tcfg)
    monkeypatch.setattr(trainer, "_epoch_order", real)
    with pytest.raises(LewmBenchError, match="pass --resume"):
        _train(data, tmp_path / "part", train_config=tcfg)
    _train(data, tmp_path / "part", train_config=tcfg, resume=True)
    full = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    part = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    for k, v in full["model"].items():
        torch.testing.assert_close(part["model"][k], v, rtol=0, atol=0, msg=k)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "full" / "log.csv").drop(columns=["clips_per_s",
                                  "epoch_time_s"]), pd.read_csv(tmp_path / "part" / "log.csv").drop(
                                  columns=["clips_per_s", "epoch_time_s"]))


def test_collapse_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    tcfg = dataclasses.replace(SMOKE.train, epochs=3, steps_per_epoch=60, collapse_std=100.0)
    with pytest.raises(TrainingStopped, match="representational collapse at epoch 2"):
        _train(data, tmp_path / "c", train_config=tcfg)
    assert torch.load(tmp_path / "c" / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert list(pd.read_csv(tmp_path / "c" / "log.csv").epoch) == [0, 1, 2]


def test_divergence_stops_with_a_clear_message(data, tmp_path, monkeypatch):
    def nan_loss(self, frames, actions, generator=None):
        nan = torch.tensor(float("nan"), requires_grad=True)
        return LossTerms(nan, {"pred_loss": nan, "sigreg": nan}, torch.zeros(1))

    monkeypatch.setattr(LeWM, "forward", nan_loss)
    with pytest.raises(TrainingStopped, match="divergence at epoch 1, step 0: loss is nan"):
        _train(data, tmp_path / "n")


def test_bad_input(data, tmp_path):
    with pytest.raises(LewmBenchError, match="create it with: lewm-bench collect --env two-room --profile smoke"):
        train("two-room", SMOKE, data_root=tmp_path, out=tmp_path / "x", progress=False)
    with pytest.raises(LewmBenchError, match="unknown agent 'dreamer'; valid agents: dinowm, dinowm-proprio, "
                                             "gcbc, gciql, gcivl, lewm, oracle, pldm, random, sac-her, sb3"):
        _train(data, tmp_path / "y", agent="dreamer")
    with pytest.raises(LewmBenchError, match="agent 'random' is a policy with nothing to train"):
        _train(data, tmp_path / "y", agent="random")
    _train(data, tmp_path / "z")
    with pytest.raises(LewmBenchError, match="agent 'lewm', not 'pldm'"):
        load_checkpoint(tmp_path / "z", "pldm")
    with pytest.raises(LewmBenchError, match="for env 'two-room', not 'pusht'"):
        load_checkpoint(tmp_path / "z", "lewm", "pusht")
    ckpt = load_checkpoint(tmp_path / "z")
    wide = LeWM(dataclasses.replace(LeWM.presets["smoke"], width=48), 16, 10)
    with pytest.raises(LewmBenchError, match="shape mismatch"):
        load_state_checked(wide, ckpt["model"], "z")
    # another config in the same folder: finished, then unfinished
    with pytest.raises(LewmBenchError, match=r"another config \(differs in train\)"):
        _train(data, tmp_path / "z", train_config=dataclasses.replace(SMOKE.train, lr=1.0))
    (tmp_path / "z" / "summary.json").unlink()
    with pytest.raises(LewmBenchError, match="another config"):
        _train(data, tmp_path / "z", resume=True, train_config=dataclasses.replace(SMOKE.train, lr=1.0))


def test_embeddings_are_finite_numbers(data, tmp_path):
    result = _train(data, tmp_path / "f")
    final = result.summary["final"]
    assert np.isfinite([final["straightness"], final["effective_rank"], final["emb_std_mean"]]).all()


def test_torchrun_two_processes_train_like_one(data, tmp_path):
    import os
    import subprocess
    import sys

    single = _train(data, tmp_path / "one").summary
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "lewm_bench.cli", "train", "--env", "two-room", "--profile", "smoke", "--data", str(data), "--out",
           str(tmp_path / "two"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = pd.read_csv(tmp_path / "two" / "log.csv")
    assert list(log.epoch) == [0, 1, 2]
    # same data order, directions and global batch; only dropout masks and per-rank BatchNorm differ
    single_log = pd.read_csv(tmp_path / "one" / "log.csv")
    assert log.loss.iloc[1] == pytest.approx(single_log.loss.iloc[1], rel=0.02)
    assert single["world_size"] == 1


def test_tensorboard_logger_mirrors_every_log_row(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = _train(data, tmp_path / "tb", logger="tensorboard")
    log = pd.read_csv(tmp_path / "tb" / "log.csv")
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_pred_loss")] == list(log.step)  # row 0 too, at step 0
    assert [e.value for e in events.Scalars("val_pred_loss")] == pytest.approx(list(log.val_pred_loss))
    assert events.Scalars("summary/train_time_s")[0].value == pytest.approx(result.summary["train_time_s"])
