"""The reward-based reference rows: ``sac-her`` (SB3 SAC + HER trained online) and ``sb3`` (any saved SB3 model)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lewm_bench import cli
from lewm_bench.baselines.sac_her import SacHer, SacHerConfig
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.envs.goal_view import make_goal_env
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import RegistryError, get_agent, register_agent, unregister_agent
from lewm_bench.training.checkpoint import load_world_model
from lewm_bench.training.trainer import train

SMOKE = PROFILES["smoke"]
FOUR = dataclasses.replace(PROTOCOLS["paper"], episodes=4)


@pytest.fixture(autouse=True)
def _threads_restored():
    before = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == before  # SAC trains on one thread and gives the others back


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                        image_size=16)
    return collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)


def _eval(agent, data, root, **kw):
    return evaluate("two-room", agent, SMOKE, data=data, root=root, out=root / "eval" / agent, protocol=FOUR,
                    timing_calls=2, warmup_calls=0, gif_episodes=0, **kw).record


def test_trains_online_and_is_evaluated_on_the_protocol_tasks_with_its_inputs_recorded(data, tmp_path):
    result = train("two-room", SMOKE, agent="sac-her", data=data, out=tmp_path / "run", progress=False)
    steps = SacHer.presets["smoke"].steps_for("two-room")
    assert result.summary["online_env_steps"] == steps and result.summary["uses_rewards"]
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "checkpoint.pt", "summary.json", "progress.csv"} <= files
    loaded = load_world_model(result.run_dir, "two-room", "sac-her")
    assert int(loaded.model.online_env_steps) == steps
    action = loaded.model.act(np.zeros(2, np.float32), np.ones(2, np.float32))
    assert action.shape == (1, 2) and np.all(np.abs(action) <= 1)
    record = _eval("sac-her", data, tmp_path, checkpoint=result.run_dir)
    assert record.inputs == "privileged state + reward" and record.online_env_steps == steps
    assert record.timed_call == "decision" and record.plan_calls == 2 and record.episodes == 4
    assert f"{steps} env steps online" in record.variant and record.train_time_s > 0
    # a finished run is reused, not retrained
    assert not train("two-room", SMOKE, agent="sac-her", data=data, out=tmp_path / "run", progress=False).finished


def test_a_killed_run_resumes_from_its_last_checkpoint(data, tmp_path):
    """kill -9 right after the first online checkpoint; --resume finishes the budget from there."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lewm_bench.cli", "train", "--env", "two-room", "--agent", "sac-her",
           "--profile", "smoke", "--data", str(data), "--out", str(out), "--no-progress"]
    killed = subprocess.run(cmd, capture_output=True, text=True,
                            env=dict(os.environ, LEWM_BENCH_FAULT="online-checkpoint:1"))
    assert killed.returncode == -9, killed.stderr
    saved = sorted((out / "online").glob("step-*/state.json"))
    assert len(saved) == 1 and not (out / "summary.json").exists()
    assert cli.main([*cmd[3:-1], "--no-progress"]) == 2  # unfinished: says to pass --resume
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    run = load_world_model(out, "two-room", "sac-her")
    assert int(run.model.online_env_steps) == SacHer.presets["smoke"].steps_for("two-room")
    assert (out / "progress-1.csv").exists() and (out / "progress.csv").exists()  # both sessions' SB3 logs


def test_any_saved_sb3_model_runs_as_the_sb3_agent(data, tmp_path):
    from stable_baselines3 import SAC, TD3

    goal = tmp_path / "goal.zip"
    SAC("MultiInputPolicy", make_goal_env("two-room", image_size=16), policy_kwargs={"net_arch": [8]}, seed=0,
        device="cpu").save(goal)
    record = _eval("sb3", data, tmp_path, checkpoint=goal)
    assert record.inputs == "privileged state" and record.online_env_steps is None and record.checkpoint == str(goal)
    state_model = tmp_path / "state.zip"  # another algorithm on the bare state (not goal-conditioned)
    from lewm_bench.envs import make_env

    env = make_env("two-room", image_size=16)
    import gymnasium as gym

    env.observation_space = gym.spaces.Box(-np.inf, np.inf, (env.state_dim,), np.float32)
    TD3("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, device="cpu").save(state_model)
    assert _eval("sb3", data, tmp_path, checkpoint=state_model).config_id != record.config_id  # keyed by the file


def test_sb3_agent_errors_name_what_is_missing(data, tmp_path, capsys):
    base = ["eval", "--env", "two-room", "--agent", "sb3", "--profile", "smoke", "--data", str(data), "--root",
            str(tmp_path)]
    assert cli.main(base) == 2
    assert "pass --checkpoint PATH" in capsys.readouterr().err
    (tmp_path / "x.zip").write_text("not a zip")
    assert cli.main([*base, "--checkpoint", str(tmp_path / "x.zip")]) == 2
    assert "saved stable-baselines3 model" in capsys.readouterr().err


def test_an_online_policy_must_offer_its_interface():
    class Half(torch.nn.Module):
        kind = "policy"

        def act(self, state, goal):
            return np.zeros((1, 2))

        def learn(self, env_kwargs, seed, run_dir, resume, progress=True):
            return 0.0

    with pytest.raises(RegistryError, match="config_class, presets, set_action_codec"):
        register_agent("half-online", Half)
    unregister_agent("half-online")
    info = get_agent("sac-her")
    assert info.trainable and info.learns_online and info.observes == "state" and info.in_grid_for("two-room")
    assert not info.in_grid_for("pusht") and get_agent("sb3").from_file and not get_agent("sb3").trainable


def test_a_few_thousand_online_steps_beat_the_random_floor(tmp_path):
    """SAC+HER at SB3's sizes ([256, 256], batch 256) after 3,000 env steps on Two-Room, against random on the same
    20 held-out start/goal pairs (measured here: 2,000 steps reach about 50%, 3,000 about 95%, random 30%)."""
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=40, max_steps=60,
                        image_size=16, held_out_fraction=0.5)
    data = collect(cfg, tmp_path / "two.h5", workers=1, progress=False)
    budget = SacHerConfig(env_steps=(("*", 3_000),), net_arch=(256, 256), batch_size=256, learning_starts=500)
    run = train("two-room", SMOKE, agent="sac-her", data=data, out=tmp_path / "run", progress=False,
                model_config=budget)
    kw = dict(data=data, root=tmp_path, protocol=dataclasses.replace(PROTOCOLS["paper"], episodes=20),
              timing_calls=0, warmup_calls=0, gif_episodes=0)
    sac = evaluate("two-room", "sac-her", SMOKE, checkpoint=run.run_dir, out=tmp_path / "sac", **kw).record
    floor = evaluate("two-room", "random", SMOKE, out=tmp_path / "random", **kw).record
    assert sac.online_env_steps == 3_000
    assert sac.success_rate >= floor.success_rate + 0.3, (sac.success_rate, floor.success_rate)
