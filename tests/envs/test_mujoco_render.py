import mujoco
import numpy as np
import pytest

from lewm_bench.envs import make_env, mujoco_render

# (env, kwargs, the model and data of a simulator, its camera, the flags its own renderer would set)
CASES = {
    "cube": ({"image_size": 32, "fast_render": True}, lambda e: (e._sim.model, e._sim.data), "front_pixels",
             {mujoco.mjtRndFlag.mjRND_SHADOW: 0}),
    "cube-slow": ({"image_size": 32, "fast_render": False}, lambda e: (e._sim.model, e._sim.data), "front_pixels", {}),
    "reacher": ({"image_size": 32}, lambda e: (e._model, e._data), "fixed",
                {mujoco.mjtRndFlag.mjRND_SHADOW: 0, mujoco.mjtRndFlag.mjRND_REFLECTION: 0}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_shared_renderer_draws_what_an_own_renderer_draws(case):
    kwargs, sim, camera, flags = CASES[case]
    name = case.split("-")[0]
    envs = [make_env(name, **kwargs) for _ in range(2)]
    own = []
    for i, env in enumerate(envs):
        env.reset(seed=i)
        renderer = mujoco.Renderer(sim(env)[0], kwargs["image_size"], kwargs["image_size"])
        for flag, value in flags.items():
            renderer.scene.flags[flag] = value
        own.append(renderer)
    rng = np.random.default_rng(0)
    for _ in range(3):
        for env, renderer in zip(envs, own):
            env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            shared = env._render()
            model, data = sim(env)
            renderer.update_scene(data, camera=camera)
            np.testing.assert_array_equal(shared, renderer.render())
    # the two simulators (different states, the same model files) drew through one renderer
    assert envs[0]._render_key == envs[1]._render_key
    assert sum(ident[1] == envs[0]._render_key and ident[2] == kwargs["image_size"]
               for ident in mujoco_render._RENDERERS) == 1
    assert not np.array_equal(envs[0]._render(), envs[1]._render())
    for r in own:
        r.close()


def test_renderers_are_kept_apart_by_model_files_and_settings():
    cube, reacher = make_env("cube", image_size=32, fast_render=True), make_env("reacher", image_size=32)
    slow = make_env("cube", image_size=32, fast_render=False)
    keys = {cube._render_key, reacher._render_key, slow._render_key}
    assert len(keys) == 3  # other meshes; other multisampling
    assert make_env("cube", image_size=32, fast_render=True)._render_key == cube._render_key


def test_unknown_camera_is_a_clear_error():
    env = make_env("reacher", image_size=32)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="camera 'top' not in the model"):
        mujoco_render.render(env._model, env._data, "top", 32, env._render_key)
