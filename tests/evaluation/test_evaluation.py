import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from lewm_bench.baselines.random import RandomAgent
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.mpc import run_mpc
from lewm_bench.evaluation.protocol import PROTOCOLS, Task, sample_tasks, wilson_interval
from lewm_bench.evaluation.run import SUMMARY_COLUMNS, _training_words, evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent
from lewm_bench.training.checkpoint import load_world_model
from lewm_bench.training.trainer import train

SMOKE = PROFILES["smoke"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=60, max_steps=100,
                        image_size=16, held_out_fraction=0.5)
    path = collect(cfg, root / "data" / "two-room.h5", workers=1, progress=False)
    return root, path


def test_wilson_interval():
    low, high = wilson_interval(13, 50)
    assert low == pytest.approx(0.1587, abs=1e-3) and high == pytest.approx(0.3955, abs=1e-3)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == pytest.approx(1.0)


def test_tasks_come_from_the_held_out_split_with_the_goal_offset_ahead(root):
    _, path = root
    with open_dataset(path) as ds:
        tasks = sample_tasks(ds, PROTOCOLS["paper"])
        held = set(ds.split_episodes("held_out"))
        assert len(tasks) == 50 and all(t.episode in held for t in tasks)
        for t in tasks[:5]:
            assert t.goal - t.start == 25
            np.testing.assert_array_equal(t.goal_state, ds.states[ds.episode_start[t.episode] + t.goal])
        again = sample_tasks(ds, PROTOCOLS["paper"])
        assert [(t.episode, t.start) for t in tasks] == [(t.episode, t.start) for t in again]
        with pytest.raises(LewmBenchError, match="fewer than the 100000 episodes"):
            sample_tasks(ds, dataclasses.replace(PROTOCOLS["paper"], episodes=100_000))


def test_mpc_counts_success_at_any_step_and_respects_the_budget():
    env = make_env("two-room", image_size=16)
    protocol = dataclasses.replace(PROTOCOLS["paper"], budget=7)
    codec = ActionCodec(np.zeros(2), np.ones(2), 5)
    near = Task(0, 0, 1, np.array([20.0, 30.0]), np.array([22.0, 30.0]))  # already within 4.57 after any step
    far = Task(1, 0, 1, np.array([10.0, 50.0]), np.array([50.0, 50.0]))
    envs = [env, make_env("two-room", image_size=16)]
    records = run_mpc(envs, [near, far], protocol, None, None, codec, 1, 5, device=None,
                      policies=[RandomAgent(2, 0), RandomAgent(2, 1)])
    assert records[0].success and records[0].steps_to_success == 1 and records[0].steps == 1
    assert not records[1].success and records[1].steps == 7 and records[1].final_distance > 4.57


def test_only_the_frames_a_planner_sees_are_rendered_and_no_episode_changes(root, tmp_path):
    """At context 1 a world model sees one frame per planning call (after 5 blocks of 5 env steps); at context 2
    every 5th frame is kept. The episodes are those of an evaluation that renders every frame (kept for a video)."""
    root_dir, path = root
    run = train("two-room", SMOKE, data=path, out=tmp_path / "run", progress=False)
    from lewm_bench.evaluation.run import _set_up

    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=3)
    for context, per_call in ((1, 1), (2, 5)):
        st = _set_up("two-room", "lewm", SMOKE, run.run_dir, path, 0, protocol, context, SMOKE.cem, "cem", root_dir)
        results = []
        for keep in (0, 3):
            envs = [make_env("two-room", image_size=16) for _ in st.tasks]
            counts = [0] * len(envs)
            for k, env in enumerate(envs):
                def counted(k=k, render=env._render, counts=counts):
                    counts[k] += 1
                    return render()
                env._render = counted
            records = run_mpc(envs, st.tasks, protocol, st.world_model, st.planner, st.codec, context, 5,
                              st.device, keep_frames=keep)
            results.append(([dataclasses.replace(r, frames=[]) for r in records], counts))
        (lazy, lazy_counts), (full, full_counts) = results
        assert lazy == full
        for r, n, m in zip(lazy, lazy_counts, full_counts):
            assert m == 2 + r.steps and n <= 2 + r.solves * per_call  # reset and goal, then the frames looked at
        assert sum(lazy_counts) < sum(full_counts)


def test_a_crashing_episode_keeps_the_other_records():
    class Broken(type(make_env("two-room", image_size=16))):
        def _simulate(self, action):
            raise RuntimeError("simulator exploded")

    protocol = dataclasses.replace(PROTOCOLS["paper"], budget=5)
    codec = ActionCodec(np.zeros(2), np.ones(2), 5)
    tasks = [Task(0, 0, 1, np.array([20.0, 30.0]), np.array([40.0, 30.0]))] * 2
    records = run_mpc([Broken(image_size=16), make_env("two-room", image_size=16)], tasks, protocol, None, None,
                      codec, 1, 5, device=None, policies=[RandomAgent(2, 0), RandomAgent(2, 1)])
    assert records[0].error == "RuntimeError: simulator exploded" and not records[0].success
    assert records[1].error is None and records[1].steps == 5


def test_random_agent_floor_on_two_room(root):
    root_dir, path = root
    result = evaluate("two-room", "random", SMOKE, data=path, root=root_dir, protocol=PROTOCOLS["paper"])
    rate = result.record.success_rate
    assert 0.08 <= rate <= 0.5, rate  # SPEC: about 26% for a random policy at offset 25 / budget 50
    episodes = pd.read_csv(result.run_dir / "episodes.csv")
    assert list(episodes.columns) == ["episode", "start", "goal", "success", "steps_to_success", "steps", "solves",
                                      "final_distance", "error"]
    assert len(episodes) == 50 and episodes.steps.max() <= 50
    summary = pd.read_csv(root_dir / "summary.csv")
    assert all(c in summary.columns for c in SUMMARY_COLUMNS)
    assert (result.run_dir / "episodes.gif").stat().st_size > 0


def test_grouping_episodes_into_batches_changes_no_episode(root, tmp_path):
    root_dir, path = root
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=12)
    whole = evaluate("two-room", "random", SMOKE, data=path, root=root_dir, protocol=protocol, out=tmp_path / "a")
    groups = evaluate("two-room", "random", SMOKE, data=path, root=root_dir, protocol=protocol, out=tmp_path / "b",
                      batch=5)
    assert groups.record.batched_episodes_per_call == 5
    pd.testing.assert_frame_equal(pd.read_csv(whole.run_dir / "episodes.csv"),
                                  pd.read_csv(groups.run_dir / "episodes.csv"))


@pytest.mark.parametrize("env", ["pusht", "cube"])
def test_a_reused_simulator_plays_each_episode_as_a_fresh_one(env, tmp_path):
    """Simulators are made once per evaluation and reused batch after batch (batch 1: one simulator for every
    episode); each episode is what it is with a simulator of its own (default batch)."""
    cfg = CollectConfig.from_profile(env, SMOKE)
    path = collect(cfg, tmp_path / "data.h5", workers=1, progress=False)
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=3, budget=10)
    kw = dict(data=path, root=tmp_path, protocol=protocol, timing_calls=0, warmup_calls=0, gif_episodes=0)
    fresh = evaluate(env, "random", SMOKE, out=tmp_path / "fresh", **kw)
    reused = evaluate(env, "random", SMOKE, out=tmp_path / "reused", batch=1, **kw)
    assert fresh.record.batched_episodes_per_call == 3 and reused.record.batched_episodes_per_call == 1
    pd.testing.assert_frame_equal(pd.read_csv(fresh.run_dir / "episodes.csv"),
                                  pd.read_csv(reused.run_dir / "episodes.csv"))


def test_lewm_eval_writes_every_metric_and_rejects_bad_input(root, tmp_path, monkeypatch):
    root_dir, path = root
    train("two-room", SMOKE, data=path, out=root_dir / "train" / "two-room" / "lewm-smoke-seed0", progress=False)
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=6)
    result = evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, timing_calls=3)
    rec = json.loads((result.run_dir / "result.json").read_text())
    assert rec["plan_calls"] == 3 and rec["plan_time_median_s"] > 0 and rec["plan_calls_batched"] >= 1
    assert rec["tokens_per_frame"] == 1 and rec["encoder_tokens_per_frame"] == 17  # 16 patches + CLS at 16 px
    cem = SMOKE.cem
    assert rec["predictor_tokens_per_call"] == cem.candidates * cem.iterations * (1 + 2)
    assert rec["params_trainable"] > 0 and rec["params_frozen"] == 0 and np.isfinite(rec["straightness"])
    assert rec["split"] == "held_out" and rec["context"] == 1
    capped = type(make_env("two-room", image_size=16))
    monkeypatch.setattr(capped, "max_parallel", 4)  # e.g. Cube: simulators are heavy, at most 10 open at once
    chunked = evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, timing_calls=1,
                       out=tmp_path / "chunked").record
    assert chunked.batched_episodes_per_call == 4 and chunked.episodes == 6
    assert rec["batched_episodes_per_call"] == 6
    adam = evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, timing_calls=1, planner_name="adam",
                    out=tmp_path / "adam").record
    assert adam.planner.startswith("adam") and adam.plan_calls == 1
    assert rec["train_data"] == rec["tasks_data"] and rec["train_data"].startswith("expert:")
    assert "data" not in rec["variant"]  # trained on and tasks from the profile's kind of data: nothing to say
    assert "trained with" not in rec["variant"] and "model" not in rec["variant"]  # trained with the presets

    # another seed of the same setting: the same config_id, so the report pools the two as seeds of one row
    train("two-room", SMOKE, data=path, out=root_dir / "train" / "two-room" / "lewm-smoke-seed1", seed=1,
          progress=False)
    seed1 = evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, timing_calls=0, seed=1,
                     out=tmp_path / "seed1").record
    assert seed1.seed == 1 and seed1.config_id == rec["config_id"]
    same = pd.read_csv(root_dir / "summary.csv", dtype={"config_id": str}).query(f"config_id == '{rec['config_id']}'")
    assert sorted(same.seed) == [0, 1]  # two rows (one per seed) of one setting: what the report pools

    # a run trained off its presets is named so in its variant, never shown as the presets' row
    loaded = load_world_model(root_dir / "train" / "two-room" / "lewm-smoke-seed0", "two-room")
    off = dataclasses.replace(loaded.run, train=dataclasses.replace(loaded.run.train, steps_per_epoch=7),
                              model=dataclasses.replace(loaded.run.model, sigreg_weight=0.0))
    assert _training_words(get_agent("lewm"), dataclasses.replace(loaded, run=off)) == \
        ", trained with steps_per_epoch 7, model sigreg_weight 0.0"

    # the same checkpoint on tasks cut from another dataset: its own row, saying so
    other = collect(CollectConfig(env="two-room", collector=make_collector("two-room", "random"), episodes=60,
                                  max_steps=100, image_size=16, held_out_fraction=0.5),
                    tmp_path / "random.h5", workers=1, progress=False)
    moved = evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, timing_calls=0, data=other,
                     out=tmp_path / "random-tasks").record
    assert moved.tasks_data.startswith("random:") and moved.train_data == rec["train_data"]
    assert moved.variant.endswith(", tasks from random data") and moved.config_id != rec["config_id"]
    rows = pd.read_csv(root_dir / "summary.csv")
    assert set(rows[rows.agent == "lewm"].config_id) >= {rec["config_id"], moved.config_id}  # neither overwritten
    with pytest.raises(LewmBenchError, match="for env 'two-room', not 'pusht'"):
        evaluate("pusht", "lewm", SMOKE, checkpoint=root_dir / "train" / "two-room" / "lewm-smoke-seed0",
                 root=root_dir, protocol=protocol)
    with pytest.raises(LewmBenchError,
                       match="valid agents: dinowm, dinowm-proprio, gcbc, gciql, gcivl, lewm, oracle, pldm, random, "
                             "sac-her, sb3"):
        evaluate("two-room", "dino", SMOKE, root=root_dir)
    with pytest.raises(LewmBenchError, match="context must be between 1 and the model's history 3"):
        evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, context=4)
    with pytest.raises(LewmBenchError, match="trained with frameskip 5 but 4 was asked for"):
        evaluate("two-room", "lewm", dataclasses.replace(SMOKE, frameskip=4), root=root_dir, protocol=protocol)
    with pytest.raises(LewmBenchError, match="batch must be >= 1"):
        evaluate("two-room", "lewm", SMOKE, root=root_dir, protocol=protocol, batch=-1)


def test_smoke_collect_train_eval_through_the_cli(tmp_path, capsys):
    from lewm_bench.cli import main

    def cli(*args):
        code = main([*args, "--profile", "smoke"])
        out, err = capsys.readouterr()
        assert code == 0, err[-2000:]
        return out

    cli("collect", "--env", "two-room", "--data-root", str(tmp_path / "data"), "--episodes", "30",
        "--max-steps", "60", "--held-out-fraction", "0.3", "--no-progress")
    data = next((tmp_path / "data").glob("two-room/*.h5"))
    cli("train", "--env", "two-room", "--data", str(data), "--out", str(tmp_path / "train" / "two-room" /
                                                                     "lewm-smoke-seed0"), "--no-progress")
    out = cli("eval", "--env", "two-room", "--root", str(tmp_path), "--timing-calls", "2")
    assert "success" in out
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary.agent.tolist() == ["lewm"] and summary.episodes.tolist() == [4]
