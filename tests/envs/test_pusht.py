import numpy as np
import pytest

from lewm_bench.envs import make_env
from lewm_bench.envs import pusht as pt


def test_set_state_is_exact_where_gym_pusht_reset_to_state_is_not():
    env = make_env("pusht", image_size=32)
    env.reset(seed=0)
    state = np.array([100.0, 200.0, 300.0, 250.0, 1.2, 0.0, 0.0])
    env.set_state(state)
    np.testing.assert_allclose(env.get_state(), state, atol=1e-9)
    # gym-pusht's own reset_to_state lands the block elsewhere (position set before angle)
    sim = env._sim
    sim.reset(options={"reset_to_state": state[:5]})
    off = np.linalg.norm(np.array(sim.block.position) - state[2:4])
    assert off > 1.0


def test_relative_action_moves_the_agent_towards_the_target():
    env = make_env("pusht", image_size=32)
    env.reset(options={"state": np.array([200.0, 200.0, 400.0, 400.0, 0.0, 0.0, 0.0])})
    for _ in range(3):
        env.step(np.array([0.5, 0.0], np.float32))
    s = env.get_state()
    assert s[0] > 230 and abs(s[1] - 200) < 1e-6


def test_success_test_uses_joint_position_error_and_wrapped_angle():
    goal = np.array([100.0, 100.0, 200.0, 200.0, 0.05, 0.0, 0.0])
    near = goal.copy()
    near[4] = 2 * np.pi - 0.05  # wraps to 0.1 rad away
    assert pt.is_success(near, goal)
    far_angle = goal.copy()
    far_angle[4] = 0.05 + np.pi / 9 + 0.01
    assert not pt.is_success(far_angle, goal)
    moved = goal.copy()
    moved[:4] += 10.1  # joint L2 over 4 coordinates = 20.2
    assert not pt.is_success(moved, goal)
    moved[:4] = goal[:4] + 9.9
    assert pt.is_success(moved, goal)


def test_goal_cost_counts_the_block_angle_the_success_test_checks():
    """A state at the goal's positions with the block turned past the tolerance fails the test: its cost (the oracle's)
    is not zero, as the position error alone would say, but above the 20 px tolerance."""
    goal = np.array([200.0, 200.0, 300.0, 300.0, 1.0])
    turned = goal + np.array([0, 0, 0, 0, 0.5])
    assert pt.distance(turned, goal) == 0 and not pt.is_success(turned, goal)
    cost = pt.PushTEnv.goal_cost
    assert cost(turned, goal) == pytest.approx(0.5 * 20 / (np.pi / 9)) and cost(turned, goal) > 20
    assert cost(goal + np.array([3.0, 4.0, 0, 0, 0.05]), goal) == pytest.approx(5.0)  # the position error dominates
