"""Collectors driven by SB3 models: ``sb3:PATH`` with any saved model, and the trained SAC expert (Reacher)."""

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest

from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect, run_episode
from lewm_bench.collect.sb3 import file_sha256
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env
from lewm_bench.envs.goal_view import make_goal_env
from lewm_bench.errors import LewmBenchError
from lewm_bench.profiles import PROFILES


@pytest.fixture(autouse=True)
def _one_thread_and_tmp_experts(tmp_path, monkeypatch):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("LEWM_BENCH_EXPERTS", str(tmp_path / "experts"))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def goal_model(tmp_path_factory):
    """A (barely trained) SAC+HER model on Two-Room's goal view, saved as a user would."""
    from stable_baselines3 import SAC, HerReplayBuffer

    path = tmp_path_factory.mktemp("models") / "her.zip"
    model = SAC("MultiInputPolicy", make_goal_env("two-room", image_size=16, max_episode_steps=10),
                replay_buffer_class=HerReplayBuffer, learning_starts=30, batch_size=16, buffer_size=500,
                policy_kwargs={"net_arch": [8]}, seed=0, device="cpu")
    model.learn(40)
    model.save(path)
    return path


class _StateEnv(gym.Env):
    """Privileged-state observation, as a user's own RL env might offer."""

    def __init__(self, state_dim, action_dim):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (action_dim,), np.float32)


def test_sb3_path_collects_a_dataset_and_is_deterministic(tmp_path, goal_model):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room", f"sb3:{goal_model}", noise_std=0.3),
                        episodes=3, max_steps=12, image_size=16)
    import torch

    torch.set_num_threads(2)
    a = collect(cfg, tmp_path / "a.h5", workers=1, progress=False)
    assert torch.get_num_threads() == 2  # collecting in this process leaves its torch threads as they were
    b = collect(cfg, tmp_path / "b.h5", workers=1, progress=False)  # same content again (no worker start-up)
    with open_dataset(a, "two-room") as da, open_dataset(b, "two-room") as db:
        assert da.meta.collector == "sb3" and da.meta.collector_params["path"] == str(goal_model)
        assert len(da.meta.collector_params["sha256"]) == 64
        np.testing.assert_array_equal(da.states[:], db.states[:])
        np.testing.assert_array_equal(da.pixels[:], db.pixels[:])
        acts = da.actions[:]
        assert np.all(np.abs(acts[np.isfinite(acts)]) <= 1) and np.ptp(da.states[:], axis=0).max() > 0


def test_sb3_path_with_a_state_policy_of_another_algorithm(tmp_path):
    from stable_baselines3 import PPO

    path = tmp_path / "ppo.zip"
    PPO("MlpPolicy", _StateEnv(4, 2), n_steps=8, batch_size=8, policy_kwargs={"net_arch": [8]}, device="cpu").save(path)
    env = make_env("reacher", image_size=16)
    ep = run_episode(env, make_collector("reacher", f"sb3:{path}").policy(), seed=0, max_steps=5)
    assert ep.states.shape == (6, 4) and np.isfinite(ep.actions[:-1]).all()


def test_sb3_path_errors_say_what_was_expected(tmp_path, goal_model):
    with pytest.raises(LewmBenchError, match="expects a saved stable-baselines3 model"):
        make_collector("two-room", f"sb3:{tmp_path / 'missing.zip'}")
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    with pytest.raises(LewmBenchError, match="expected a saved stable-baselines3 model"):
        run_episode(make_env("two-room", image_size=16), make_collector("two-room", f"sb3:{bad}").policy(), 0, 2)
    with pytest.raises(LewmBenchError, match="does not fit env"):  # a Two-Room goal model in PushT
        run_episode(make_env("pusht", image_size=16), make_collector("pusht", f"sb3:{goal_model}").policy(), 0, 2)


def test_sac_expert_trains_once_then_is_reused(tmp_path):
    collector = make_collector("reacher", "sac", train_steps=60, episode_steps=5, net_width=16)
    assert collector.env == "reacher" and not collector.model_path().exists()
    cfg = CollectConfig(env="reacher", collector=collector, episodes=2, max_steps=6, image_size=16)
    collect(cfg, tmp_path / "r.h5", workers=1, progress=False)
    model, record = collector.model_path(), collector.model_path().with_suffix(".json")
    assert model.is_file() and record.is_file()
    stamp = model.stat().st_mtime_ns
    collect(CollectConfig(env="reacher", collector=collector, episodes=2, max_steps=6, image_size=16, seed=1),
            tmp_path / "r2.h5", workers=1, progress=False)
    assert model.stat().st_mtime_ns == stamp  # reused, not retrained
    with open_dataset(tmp_path / "r.h5", "reacher") as ds:
        assert ds.meta.collector == "sac" and ds.meta.collector_params["train_steps"] == 60
        assert ds.meta.collector_provenance == {"expert": model.name, "expert_sha256": file_sha256(model)}
    # an expert retrained (or dropped in) under the same name is another expert: never mixed into a dataset
    other = make_collector("reacher", "sac", train_steps=60, episode_steps=5, net_width=16, train_seed=1)
    other.prepare()
    shutil.copyfile(other.model_path(), model)
    with pytest.raises(LewmBenchError, match="its expert was retrained or replaced"):
        collect(cfg, tmp_path / "r.h5", workers=1, progress=False)
    spool = tmp_path / "r3.h5.partial"  # an interrupted collection resumed with another expert
    spool.mkdir()
    (spool / "provenance.json").write_text(json.dumps({"expert": model.name, "expert_sha256": "0" * 64}))
    cfg3 = CollectConfig(env="reacher", collector=collector, episodes=2, max_steps=6, image_size=16, seed=3)
    (spool / "config.json").write_text(json.dumps(cfg3.metadata()))
    with pytest.raises(LewmBenchError, match="the interrupted collection in .* was collected with"):
        collect(cfg3, tmp_path / "r3.h5", workers=1, progress=False)


def test_reacher_profiles_use_the_sac_expert_with_their_budget():
    smoke = CollectConfig.from_profile("reacher", PROFILES["smoke"])
    cpu = CollectConfig.from_profile("reacher", PROFILES["cpu"])
    assert smoke.collector.name == cpu.collector.name == "sac"
    assert smoke.collector.train_steps < cpu.collector.train_steps
    assert smoke.image_size == 16 and smoke.episodes == 8
