"""The goal-conditioned view of every registered env: SB3's checker, HER's reward, SB3's tools unchanged."""

import warnings

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from lewm_bench.envs import ENVS, make_env
from lewm_bench.envs.goal_view import GoalView, batched_success, make_goal_env
from lewm_bench.errors import LewmBenchError

KWARGS = {"cube": {"fast_render": True}}
NAMES = list(ENVS)


@pytest.fixture(scope="module", params=NAMES)
def env(request):
    e = make_env(request.param, image_size=36, **KWARGS.get(request.param, {}))  # 36 px: SB3's CNN minimum
    yield e
    e.close()


def _check_quietly(env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    return [str(w.message) for w in caught if "stable_baselines3" in (w.filename or "")]


def test_sb3_check_env_passes_on_the_env_and_its_goal_view(env):
    assert _check_quietly(env) == []
    view = GoalView(env)
    assert _check_quietly(view) == []
    obs, _ = view.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert obs["observation"].shape == obs["desired_goal"].shape == (env.state_dim,)


def _state_pairs(view, n_states=6, seed=0):
    """Goal draws, states a few random steps on, and noisy copies: pairs on both sides of the success test."""
    rng = np.random.default_rng(seed)
    states = []
    for i in range(n_states):
        obs, _ = view.reset(seed=seed + i)
        states.append(obs["desired_goal"])
        for _ in range(3):
            obs, *_ = view.step(rng.uniform(-1, 1, view.action_space.shape).astype(np.float32))
            states.append(obs["achieved_goal"])
    states = np.stack(states)
    idx = rng.integers(len(states), size=(3, len(states)))
    achieved = np.concatenate([states, states[idx[0]], states])
    desired = np.concatenate([states, states[idx[1]], states * (1 + rng.normal(0, 1e-3, states.shape))])
    return achieved.astype(np.float32), desired.astype(np.float32)


def test_compute_reward_is_the_env_success_test_on_random_batches(env):
    view = GoalView(env)
    achieved, desired = _state_pairs(view)
    expected = np.array([0.0 if env.is_success(a.astype(np.float64), d.astype(np.float64)) else -1.0
                         for a, d in zip(achieved, desired)], np.float32)
    reward = view.compute_reward(achieved, desired, [{}] * len(achieved))
    assert reward.dtype == np.float32 and reward.shape == (len(achieved),)
    np.testing.assert_array_equal(reward, expected)
    assert (expected == 0).any() and (expected == -1).any()  # both sides of the test are exercised
    # any leading batch shape, and a single pair gives a scalar (HER relabels 2-D batches, check_env 1-D)
    np.testing.assert_array_equal(view.compute_reward(achieved.reshape(3, -1, env.state_dim),
                                                      desired.reshape(3, -1, env.state_dim), None),
                                  expected.reshape(3, -1))
    assert view.compute_reward(achieved[0], desired[0], {}).shape == ()
    dense = GoalView(env, reward="dense").compute_reward(achieved, desired, None)
    np.testing.assert_allclose(dense, [-env.distance(a.astype(np.float64), d.astype(np.float64))
                                       for a, d in zip(achieved, desired)], rtol=1e-5)


def test_step_reward_success_and_limits_agree(env):
    view = GoalView(env, max_episode_steps=3)
    obs, info = view.reset(seed=4)
    start, goal = obs["observation"], obs["desired_goal"]
    rewards, truncs = [], []
    for _ in range(3):
        obs, r, term, trunc, info = view.step(np.zeros(env.action_dim, np.float32))
        assert r == view.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
        assert info["is_success"] == (r == 0.0) and not term
        rewards.append(r)
        truncs.append(trunc)
    assert truncs == [False, False, True]
    # same seed, same start and goal; the protocol's start/goal pairs pass through options
    again, _ = view.reset(seed=4)
    np.testing.assert_array_equal(again["observation"], start)
    np.testing.assert_array_equal(again["desired_goal"], goal)
    obs, info = view.reset(options={"state": info["state"], "goal_state": info["state"]})
    assert info["is_success"]
    term_view = GoalView(env, terminate_on_success=True)
    term_view.reset(options={"goal_state": info["state"], "state": info["state"]})
    assert term_view.step(np.zeros(env.action_dim, np.float32))[2] in (True, False)  # runs; success may move


def test_bad_arguments_are_clear_errors():
    env = make_env("two-room", image_size=16)
    with pytest.raises(LewmBenchError, match="'sparse'"):
        GoalView(env, reward="shaped")
    with pytest.raises(LewmBenchError, match="max_episode_steps"):
        GoalView(env, max_episode_steps=0)
    with pytest.raises(ValueError, match="unknown reset option"):
        GoalView(env).reset(options={"goal": 1})


def test_batched_success_matches_scalar_on_two_room():
    a = np.array([[10.0, 10.0], [10.0, 10.0]])
    d = np.array([[12.0, 10.0], [20.0, 10.0]])
    assert batched_success(make_env("two-room", image_size=16), a, d).tolist() == [True, False]


@pytest.fixture
def one_torch_thread():
    """Tiny networks on a shared 2-core machine: more threads only spin (10x slower under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sb3_her_eval_callback_and_evaluate_policy_work_unchanged(tmp_path, one_torch_thread):
    """A short SAC+HER run: the replay buffer relabels through compute_reward, the callbacks read is_success."""
    from stable_baselines3 import SAC, HerReplayBuffer
    from stable_baselines3.common.callbacks import EvalCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    env = make_goal_env("two-room", image_size=16, max_episode_steps=10)
    model = SAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer, learning_starts=40, batch_size=32,
                buffer_size=1_000, policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    callback = EvalCallback(Monitor(make_goal_env("two-room", image_size=16, max_episode_steps=10)),
                            n_eval_episodes=2, eval_freq=50, log_path=str(tmp_path), verbose=0)
    model.learn(60, callback=callback)
    assert len(callback.evaluations_successes) == 1 and len(callback.evaluations_successes[0]) == 2
    mean, _ = evaluate_policy(model, Monitor(make_goal_env("two-room", image_size=16, max_episode_steps=10)),
                              n_eval_episodes=2)
    assert -10.0 <= mean <= 0.0
    relabelled = model.replay_buffer.sample(64)
    achieved = relabelled.next_observations["achieved_goal"].numpy()
    desired = relabelled.next_observations["desired_goal"].numpy()
    np.testing.assert_array_equal(relabelled.rewards.numpy().ravel(), env.compute_reward(achieved, desired, None))
