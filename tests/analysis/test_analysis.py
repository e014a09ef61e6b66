import numpy as np
import pytest
import torch

from lewm_bench.analysis.config import ProbeConfig
from lewm_bench.analysis.probe import fit_linear, predict_linear, probe_embeddings
from lewm_bench.analysis.voe import PALETTE, changed_colour, rotate_colours, surprise
from lewm_bench.envs import ENVS, make_env
from lewm_bench.errors import LewmBenchError


class LinearMotion:
    """Embedding = the frame's mean pixel value; a predictor that knows it grows by one per step."""

    history = 3

    def encode(self, frames):
        return frames.float().mean((2, 3, 4))[..., None]

    def predict(self, z, actions):
        return z + 1.0


def test_surprise_of_an_unperturbed_trajectory_under_a_perfect_predictor_is_zero():
    frames = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(2, 6, 3, 4, 4).clone()
    blocks = torch.zeros(2, 5, 2)
    s = surprise(LinearMotion(), frames, blocks)
    assert torch.isnan(s[:, 0]).all() and torch.equal(s[:, 1:], torch.zeros(2, 5))
    frames[1, 3] += 5.0  # an impossible jump at step 3
    s = surprise(LinearMotion(), frames, blocks)
    assert s[1, 3] == pytest.approx(25.0) and s[0, 3] == 0 and s[1, 4] > 0


def test_colour_rotation_is_visual_only():
    frame = np.array([[[10, 20, 30]]], np.uint8)
    assert rotate_colours(frame).tolist() == [[[30, 10, 20]]]


@pytest.mark.parametrize("name", list(ENVS))
def test_recolour_paints_only_the_object_and_leaves_the_physics(name):
    env = make_env(name, image_size=64 if name == "cube" else 32, **({"fast_render": True} if name == "cube" else {}))
    try:
        obs, _ = env.reset(seed=3)
        state, colour = env.get_state(), changed_colour(env.object_colour)
        assert colour in PALETTE and colour != env.object_colour
        env.recolour(colour)
        painted = env.render()
        changed = np.any(painted != obs, axis=-1)
        assert 0 < changed.sum() < 0.15 * changed.size  # the object only, not the scene
        old, new = obs[changed].mean(0), painted[changed].mean(0)
        assert np.linalg.norm(new - colour) < np.linalg.norm(old - colour)
        actions = np.random.default_rng(0).uniform(-1, 1, (10, env.action_dim)).astype(np.float32)
        recoloured = [env.step(a)[4]["state"] for a in actions]
        env.reset(options={"state": state})  # reset restores the colour ...
        np.testing.assert_array_equal(env.render(), obs)
        plain = [env.step(a)[4]["state"] for a in actions]
        np.testing.assert_array_equal(np.stack(recoloured), np.stack(plain))  # ... and the physics never changed
        env.recolour(colour)
        env.recolour(None)
        env.reset(options={"state": state})
        np.testing.assert_array_equal(env.render(), obs)
        with pytest.raises(ValueError, match="RGB triple in 0-255"):
            env.recolour((300, 0, 0))
    finally:
        env.close()


def test_changed_colour_is_the_farthest_palette_colour():
    assert changed_colour((220, 30, 30)) == (0, 130, 200)  # Two-Room's red agent turns blue
    assert changed_colour((0, 130, 200)) != (0, 130, 200)


@pytest.mark.parametrize("name", list(ENVS))
def test_teleports_are_valid_and_visible(name):
    env = make_env(name, image_size=16, **({"fast_render": True} if name == "cube" else {}))
    rng = np.random.default_rng(0)
    try:
        for seed in range(5):
            env.reset(seed=seed)
            state = env.get_state()
            jumped = env.teleport(state, rng)
            assert jumped.shape == state.shape and not np.allclose(jumped, state)
            env.reset(options={"state": jumped})  # a valid state the simulator accepts as is
            np.testing.assert_allclose(env.get_state()[:len(state)], jumped, atol=1e-6)
            if name == "two-room":
                from lewm_bench.envs.two_room import is_free
                assert is_free(jumped) and np.hypot(*(jumped - state)) >= 8
            elif name == "pusht":
                assert np.hypot(*(jumped[2:4] - state[2:4])) >= 60 and np.hypot(*(jumped[2:4] - jumped[:2])) >= 70
                np.testing.assert_array_equal(jumped[[0, 1, 4]], state[[0, 1, 4]])
            elif name == "reacher":
                from lewm_bench.envs.reacher import WRIST_LIMIT, distance
                assert distance(jumped, state) >= 0.5 and abs(jumped[1]) <= WRIST_LIMIT
                np.testing.assert_array_equal(jumped[2:], 0.0)
            else:
                from lewm_bench.envs.cube import CUBE_AREA, CUBE_POS
                xy = jumped[CUBE_POS][:2]
                assert np.all(xy >= CUBE_AREA[0]) and np.all(xy <= CUBE_AREA[1])
                assert np.linalg.norm(jumped[CUBE_POS] - state[CUBE_POS]) >= 0.08
            assert set(env.physical_quantities(state)) == {
                "two-room": {"agent position"}, "pusht": {"agent position", "block position", "block angle (sin, cos)"},
                "cube": {"effector position", "cube position"},
                "reacher": {"joint angles (sin, cos)", "fingertip position"}}[name]
    finally:
        env.close()


def test_impossible_teleports_are_redrawn_then_refused():
    env = make_env("two-room", image_size=16)
    calls = []

    def draw():
        calls.append(1)
        return np.array([32.0, 40.0]) if len(calls) < 3 else np.array([10.0, 10.0])  # first two inside the wall

    from lewm_bench.envs.two_room import is_free
    assert env._redraw(draw, is_free, "teleport").tolist() == [10.0, 10.0] and len(calls) == 3
    with pytest.raises(LewmBenchError, match="no valid teleport in 5 draws"):
        env._redraw(lambda: np.array([32.0, 40.0]), is_free, "teleport", tries=5)


def test_probes_recover_a_known_linear_map():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(32, 2, generator=g)
    x_train, x_test = torch.randn(600, 32, generator=g), torch.randn(200, 32, generator=g)
    table = probe_embeddings(x_train, {"position": (x_train @ w).numpy()}, x_test, {"position": (x_test @ w).numpy()},
                             ProbeConfig(ridge=1e-3, mlp_steps=300)).set_index("probe")
    assert table.loc["linear", "pearson_r"] > 0.999 and table.loc["linear", "mse"] < 1e-3
    assert table.loc["mlp", "pearson_r"] > 0.9
    unrelated = probe_embeddings(x_train, {"noise": torch.randn(600, 1, generator=g).numpy()}, x_test,
                                 {"noise": torch.randn(200, 1, generator=g).numpy()}, ProbeConfig(mlp_steps=50))
    assert abs(unrelated.set_index("probe").loc["linear", "pearson_r"]) < 0.2


def test_linear_probe_dual_form_matches_primal():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(20, 50, generator=g), torch.randn(20, 2, generator=g)
    w = fit_linear(x, y, 0.5)  # 51 features > 20 samples: dual form
    xb = torch.cat([x, torch.ones(20, 1)], 1).double()
    primal = torch.linalg.solve(xb.T @ xb + 0.5 * torch.eye(51, dtype=torch.float64), xb.T @ y.double()).float()
    torch.testing.assert_close(predict_linear(w, x), predict_linear(primal, x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("colour_change", ["object", "frame"])
def test_replayed_trajectories_match_the_dataset_until_the_perturbation(tmp_path, colour_change):
    from lewm_bench.analysis.config import VoEConfig
    from lewm_bench.analysis.voe import replay_trajectories
    from lewm_bench.collect.policies import make_collector
    from lewm_bench.collect.runner import CollectConfig, collect
    from lewm_bench.data.dataset import open_dataset

    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), tmp_path / "d.h5", workers=1, progress=False)
    cfg = VoEConfig(trajectories=3, frames=5, perturb_frame=2, colour_change=colour_change)
    trajectories, _ = replay_trajectories("two-room", data, 5, cfg)
    with open_dataset(data) as ds:
        for tr in trajectories:
            row = int(ds.episode_start[tr.episode]) + tr.start
            np.testing.assert_array_equal(tr.frames["none"], ds.pixels[row:row + 21:5])  # every 5th frame
            np.testing.assert_array_equal(tr.frames["teleport"][:2], tr.frames["none"][:2])
            assert not np.array_equal(tr.frames["teleport"][2], tr.frames["none"][2])
            np.testing.assert_array_equal(tr.frames["colour"][:2], tr.frames["none"][:2])
            if colour_change == "frame":
                np.testing.assert_array_equal(tr.frames["colour"][2:], rotate_colours(tr.frames["none"][2:]))
            else:  # the agent alone is repainted: few pixels change, in every frame from the perturbation on
                changed = np.any(tr.frames["colour"][2:] != tr.frames["none"][2:], axis=-1)
                assert all(0 < n < 0.15 * 16 * 16 for n in changed.sum((1, 2)))


def test_replays_are_cached_per_dataset_and_config(tmp_path, monkeypatch):
    from lewm_bench.analysis import voe
    from lewm_bench.analysis.config import VoEConfig
    from lewm_bench.collect.policies import make_collector
    from lewm_bench.collect.runner import CollectConfig, collect

    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), tmp_path / "d.h5", workers=1, progress=False)
    cfg = VoEConfig(trajectories=3, frames=5, perturb_frame=2)
    first, _ = voe.replay_trajectories("two-room", data, 5, cfg, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("voe_replays-*.npz"))) == 1

    def no_simulator(*args, **kwargs):
        raise AssertionError("a cached replay must not simulate again")

    monkeypatch.setattr(voe, "make_env", no_simulator)
    again, codec = voe.replay_trajectories("two-room", data, 5, cfg, cache_dir=tmp_path / "cache")
    assert codec.frameskip == 5 and [(t.episode, t.start) for t in again] == [(t.episode, t.start) for t in first]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.actions, b.actions)
        for v in voe.VARIANTS:
            np.testing.assert_array_equal(a.frames[v], b.frames[v])
    with pytest.raises(AssertionError, match="must not simulate"):  # another config is another replay
        voe.replay_trajectories("two-room", data, 5, VoEConfig(trajectories=3, frames=5, perturb_frame=3),
                                cache_dir=tmp_path / "cache")


def test_unknown_colour_change_is_a_clear_error():
    from lewm_bench.analysis.config import VoEConfig

    with pytest.raises(ValueError, match="colour_change must be one of"):
        VoEConfig(colour_change="hue")
