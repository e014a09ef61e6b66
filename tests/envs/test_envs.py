"""Conformance tests generated from the env registry: every registered env must pass all of them."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lewm_bench.envs import ENVS, env_spec, make_env
from lewm_bench.errors import LewmBenchError

KWARGS = {"cube": {"fast_render": True}}
NAMES = list(ENVS)


@pytest.fixture(scope="module", params=NAMES)
def env(request):
    e = make_env(request.param, image_size=32, **KWARGS.get(request.param, {}))
    yield e
    e.close()


def test_check_env(env):
    check_env(env, skip_render_check=False)


def test_gym_make_by_id():
    for info in ENVS.values():
        ep = gym.spec(info.gym_id).entry_point
        assert ep == f"{info.entry_point.__module__}:{info.entry_point.__qualname__}"


def test_spaces(env):
    assert env.observation_space.shape == (32, 32, 3) and env.observation_space.dtype == np.uint8
    assert env.action_space.shape == (env.action_dim,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    assert info["state"].shape == (env.state_dim,)


def test_same_seed_same_rollout(env):
    def rollout(seed):
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        frames, states = [obs], [info["state"]]
        for _ in range(6):
            obs, _, _, _, info = env.step(rng.uniform(-1, 1, env.action_dim).astype(np.float32))
            frames.append(obs)
            states.append(info["state"])
        return np.stack(frames), np.stack(states)

    f1, s1 = rollout(3)
    f2, s2 = rollout(3)
    f3, s3 = rollout(4)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)


def test_set_state_render_state_is_success_roundtrip(env):
    env.reset(seed=1)
    for _ in range(3):
        env.step(np.full(env.action_dim, 0.5, np.float32))
    goal = env.get_state()
    goal_image = env._render()
    env.reset(seed=2)
    start = env.get_state()
    # rendering the goal does not move the env
    np.testing.assert_array_equal(env.render_state(goal), goal_image)
    np.testing.assert_array_equal(env.get_state(), start)
    assert env.is_success(goal, goal)
    env.set_state(goal)
    np.testing.assert_allclose(env.get_state(), goal, atol=1e-9)
    np.testing.assert_array_equal(env._render(), goal_image)
    # reset to a state and a goal: success is reported in info and reward
    obs, info = env.reset(options={"state": goal, "goal_state": goal})
    assert info["is_success"]
    np.testing.assert_array_equal(obs, goal_image)


def test_stepping_from_a_set_state_matches_the_original(env):
    env.reset(seed=5)
    actions = np.random.default_rng(0).uniform(-1, 1, (4, env.action_dim)).astype(np.float32)
    env.step(actions[0])
    mid = env.get_state()
    for a in actions[1:]:
        env.step(a)
    end = env.get_state()
    env.reset(seed=9)
    env.set_state(mid)
    for a in actions[1:]:
        env.step(a)
    np.testing.assert_allclose(env.get_state(), end, atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros(7, np.float32), np.zeros((1, 2), np.float32)])
def test_wrong_action_shape_is_a_clear_error(env, bad):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"action must have shape \({env.action_dim},\)"):
        env.step(bad)


def test_wrong_action_dtype_is_a_clear_error(env):
    env.reset(seed=0)
    with pytest.raises(TypeError, match="real numeric array"):
        env.step(np.array(["a"] * env.action_dim))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(env.action_dim, np.nan))


def test_wrong_state_shape_and_unknown_options(env):
    with pytest.raises(ValueError, match="state must have shape"):
        env.set_state(np.zeros(env.state_dim + 1))
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"goal": None})


def test_unknown_env_lists_valid_names():
    with pytest.raises(LewmBenchError, match="valid names: two-room, pusht, cube, reacher"):
        env_spec("reach")


def test_goal_cost_ranks_every_success_below_every_failure(env):
    """The oracle's and the diagnostics' cost (``goal_cost``) sees every condition of the success test: along a random
    walk away from a goal, no state that passes the test costs more than one that fails it."""
    rng = np.random.default_rng(0)
    env.reset(seed=3)
    goal, states = env.get_state(), []
    for _ in range(30):
        env.step(rng.uniform(-1, 1, env.action_dim).astype(np.float32))
        states.append(env.get_state())
    cost = np.array([env.goal_cost(s, goal) for s in [goal, *states]])
    passed = np.array([env.is_success(s, goal) for s in [goal, *states]])
    assert passed[0] and cost[0] == pytest.approx(0.0, abs=1e-9) and np.all(cost >= 0)
    if (~passed).any():
        assert cost[passed].max() < cost[~passed].min()
