import numpy as np

from lewm_bench.envs import cube, make_env


def test_cube_position_index_matches_ogbench():
    env = make_env("cube", image_size=32, fast_render=True)
    env.reset(seed=0)
    info = env.oracle_info()
    np.testing.assert_allclose(env.get_state()[cube.CUBE_POS], info["privileged/block_0_pos"])


def test_success_is_cube_distance():
    s = np.zeros(cube.N_QPOS + cube.N_QVEL)
    g = s.copy()
    g[cube.CUBE_POS] = [0.03, 0.0, 0.0]
    assert cube.is_success(s, g)
    g[cube.CUBE_POS] = [0.03, 0.03, 0.0]
    assert not cube.is_success(s, g)


def test_fast_render_is_recorded_and_changes_images():
    slow = make_env("cube", image_size=32, fast_render=False)
    fast = make_env("cube", image_size=32, fast_render=True)
    a, _ = slow.reset(seed=0)
    b, _ = fast.reset(seed=0)
    np.testing.assert_array_equal(slow.get_state(), fast.get_state())
    assert not np.array_equal(a, b)
    # the fast setting survives resets
    b2, _ = fast.reset(seed=0)
    np.testing.assert_array_equal(b, b2)
    assert fast.fast_render and not slow.fast_render


def test_a_step_reaches_the_state_and_oracle_info_of_ogbenchs_own_step():
    """The env's physics-only step (no observation, reward or info of OGBench's) against OGBench's ``step`` from the
    same states with the same random actions, gripper included: the same states bit for bit, the same oracle info."""
    import mujoco

    ours, theirs = make_env("cube", image_size=16, fast_render=True), make_env("cube", image_size=16, fast_render=True)
    rng = np.random.default_rng(0)
    for seed in range(3):
        ours.reset(seed=seed)
        theirs.reset(seed=seed)
        for action in rng.uniform(-1, 1, (40, 5)):
            ours._simulate(action)
            theirs._sim.step(action)
            mujoco.mj_kinematics(theirs._sim.model, theirs._sim.data)
            np.testing.assert_array_equal(ours.get_state(), theirs.get_state())
        a, b = ours.oracle_info(), theirs.oracle_info()
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
