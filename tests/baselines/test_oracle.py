"""The oracle (baselines/oracle.py): CEM over a copy of the true simulator."""

import dataclasses

import numpy as np
import pytest

from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.envs import make_env
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

SMOKE = PROFILES["smoke"]


@pytest.mark.parametrize("env_name", ["two-room", "pusht", "cube", "reacher"])
def test_simulate_reaches_the_state_an_episode_reaches_with_the_same_actions(env_name):
    """What the oracle scores is what the episode's env does: the same start state and actions, the same end."""
    env, sim = make_env(env_name, image_size=16), make_env(env_name, image_size=16)
    env.reset(seed=3)
    start = env.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, (10, env.action_dim)).astype(np.float32)
    sim.reset(seed=5)  # a simulator with another history
    for a in actions:
        env.step(a)
    np.testing.assert_allclose(sim.simulate(start, actions), env.get_state(), rtol=1e-6, atol=1e-6)


def test_the_oracle_solves_two_room_where_random_does_not(tmp_path):
    cfg = CollectConfig.from_profile("two-room", SMOKE)
    collect(cfg, cfg.default_path(tmp_path / "data"), workers=1, progress=False)
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=SMOKE.eval_episodes)
    oracle = evaluate("two-room", "oracle", SMOKE, root=tmp_path, protocol=protocol, gif_episodes=0).record
    rand = evaluate("two-room", "random", SMOKE, root=tmp_path, protocol=protocol, gif_episodes=0).record
    assert oracle.success_rate == 1.0 and rand.success_rate < 1.0
    assert oracle.inputs == "privileged state + simulator" and oracle.timed_call == "decision"
    assert oracle.planner == "cem 16x2 top4 h2" and ", cem 16x2 top4 h2, " in oracle.variant
    harder = evaluate("two-room", "oracle", SMOKE, root=tmp_path, protocol=protocol, gif_episodes=0,
                      cem=dataclasses.replace(SMOKE.cem, iterations=3), out=tmp_path / "oracle-4").record
    assert harder.planner == "cem 16x3 top4 h2" and harder.config_id != oracle.config_id  # never one row
    info = get_agent("oracle")
    assert info.plans_in_simulator and not info.trainable and info.in_grid_for("pusht") and info.in_grid_for("reacher")
    assert not info.in_grid_for("cube")  # 37 s per solve on MuJoCo at the cpu profile: opt-in
