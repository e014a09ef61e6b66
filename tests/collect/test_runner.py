import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lewm_bench.collect import runner
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.dataset import open_dataset
from lewm_bench.errors import LewmBenchError


def _cfg(**kw):
    base = dict(env="two-room", collector=make_collector("two-room"), episodes=8, max_steps=30, image_size=16)
    return CollectConfig(**(base | kw))


def _read_all(path):
    with open_dataset(path) as ds:
        return ds.pixels[:], ds.actions[:], ds.states[:], ds.episode_length, ds.held_out, ds.action_mean


def test_dataset_roundtrip_matches_a_replay_of_the_episodes(tmp_path):
    cfg = _cfg(episodes=5)
    path = collect(cfg, tmp_path / "d.h5", workers=1, progress=False)
    with open_dataset(path, "two-room") as ds:
        assert ds.meta.num_episodes == 5 and ds.meta.collector == "expert"
        assert ds.meta.collector_params["noise_std"] == 2.0
        assert ds.meta.env_kwargs == {"image_size": 16}
        ep = ds.episode(3)
        seed = int(ds.episode_seed[3])
        assert seed == runner.episode_seed(cfg.seed, 3)
    # replaying the recorded actions from the first state reproduces frames and states exactly
    from lewm_bench.envs import make_env

    env = make_env("two-room", image_size=16)
    obs, info = env.reset(options={"state": ep.states[0]})
    np.testing.assert_array_equal(obs, ep.pixels[0])
    for t, a in enumerate(ep.actions[:-1]):
        obs, _, _, _, info = env.step(a)
        np.testing.assert_array_equal(obs, ep.pixels[t + 1])
        np.testing.assert_allclose(info["state"], ep.states[t + 1])
    assert np.all(np.isnan(ep.actions[-1]))


def test_workers_do_not_change_the_data(tmp_path):
    a = _read_all(collect(_cfg(), tmp_path / "one.h5", workers=1, progress=False))
    b = _read_all(collect(_cfg(), tmp_path / "two.h5", workers=2, progress=False))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_resume_after_interruption_gives_the_uninterrupted_dataset(tmp_path, monkeypatch):
    cfg = _cfg()
    full = _read_all(collect(cfg, tmp_path / "full.h5", workers=1, progress=False))
    out = tmp_path / "resumed.h5"
    calls = {"n": 0}
    real = runner._collect_to_spool

    def dies_after_three(index):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(index)

    monkeypatch.setattr(runner, "_collect_to_spool", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        collect(cfg, out, workers=1, progress=False)
    assert not out.exists()  # no half-written dataset
    spooled = sorted(p.name for p in out.with_name(out.name + ".partial").glob("ep_*.npz"))
    assert spooled == ["ep_000000.npz", "ep_000001.npz", "ep_000002.npz"]
    with pytest.raises(LewmBenchError, match="interrupted collection is in"):
        open_dataset(out)
    monkeypatch.setattr(runner, "_collect_to_spool", real)
    resumed = _read_all(collect(cfg, out, workers=1, progress=False))
    for x, y in zip(full, resumed):
        np.testing.assert_array_equal(x, y)
    assert not out.with_name(out.name + ".partial").exists()


def test_resume_refuses_other_settings_and_existing_other_dataset(tmp_path, monkeypatch):
    out = tmp_path / "d.h5"
    spool = out.with_name(out.name + ".partial")
    spool.mkdir()
    (spool / "config.json").write_text('{"seed": 99}')
    with pytest.raises(LewmBenchError, match="interrupted collection with other settings"):
        collect(_cfg(), out, workers=1, progress=False)
    collect(_cfg(), out, workers=1, progress=False, force=True)
    with pytest.raises(LewmBenchError, match="already holds a different dataset"):
        collect(_cfg(episodes=9), out, workers=1, progress=False)
    assert collect(_cfg(), out, workers=1, progress=False) == out  # identical request: reused


def test_kill_during_cli_collection_then_rerun_resumes(tmp_path):
    out = tmp_path / "k.h5"
    cmd = [sys.executable, "-m", "lewm_bench.cli", "collect", "--env", "pusht", "--episodes", "40", "--max-steps",
           "30", "--image-size", "16", "--workers", "2", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    spool = out.with_name(out.name + ".partial")
    deadline = time.time() + 60
    while time.time() < deadline and len(list(spool.glob("ep_*.npz"))) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    done_before = len(list(spool.glob("ep_*.npz")))
    assert 5 <= done_before < 40 and not out.exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ)
    assert rerun.returncode == 0, rerun.stderr
    with open_dataset(out, "pusht") as ds:
        assert ds.meta.num_episodes == 40
