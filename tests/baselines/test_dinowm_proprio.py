import dataclasses

import pandas as pd
import pytest
import torch

from lewm_bench.baselines.dinowm import DinoWM
from lewm_bench.baselines.dinowm_proprio import DinoWMProprio
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.envs import env_spec
from lewm_bench.envs.spec import EnvSpec
from lewm_bench.envs.two_room import TwoRoomEnv
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.protocols import proprio_kwargs
from lewm_bench.registry import RegistryError, get_agent
from lewm_bench.training.checkpoint import load_world_model
from lewm_bench.training.trainer import train

SMOKE = PROFILES["smoke"]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_each_env_declares_its_proprio_once():
    assert env_spec("two-room").proprio == (0, 1)  # agent position
    assert env_spec("pusht").proprio == (0, 1, 5, 6)  # agent position and velocity
    assert env_spec("cube").proprio == (*range(14), *range(21, 35))  # arm + gripper qpos and qvel
    assert env_spec("reacher").proprio == (0, 1, 2, 3)  # both joint angles and velocities
    data = {"paper": env_spec("two-room").data["paper"]}
    with pytest.raises(ValueError, match=r"proprio must be distinct state indices in \[0, 2\); got \(0, 2\)"):
        EnvSpec.of(TwoRoomEnv, "bad", data=data, proprio=(0, 2))


def test_registered_and_built_with_the_envs_proprio():
    info = get_agent("dinowm-proprio")
    assert info.uses_proprio and not get_agent("dinowm").uses_proprio and not info.in_grid
    assert info.train_config_for(PROFILES["paper"]) == get_agent("dinowm").train_config_for(PROFILES["paper"])
    model = info.build(info.config_for("paper"), 224, 10, "pusht")
    assert model.proprio_index.tolist() == [0, 1, 5, 6] and count(model.proprio_encoder) == 4 * 10 + 10
    # the reference predictor at width 384 + 10 proprio + 10 action = 404 over 3 x 196 patch tokens
    assert count(model.predictor) == 3 * 196 * 404 + 6 * (404 * 3072 + 1024 * 404 + 404 + 404 * 2048 + 2048
                                                           + 2048 * 404 + 404 + 4 * 404) + 2 * 404 == 20_122_600
    assert count(DinoWM(DinoWM.presets["paper"], 224, 10).predictor) == 19_624_820
    with pytest.raises(ValueError, match="needs proprio"):
        DinoWMProprio(info.config_for("smoke"), 16, 10)
    spec = dataclasses.replace(env_spec("two-room"), proprio=())
    with pytest.raises(RegistryError, match="declares none"):
        from lewm_bench.envs import spec as spec_module
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(spec_module._ENVS, "two-room", spec)
            info.build(info.config_for("smoke"), 16, 10, "two-room")


def smoke_model() -> DinoWMProprio:
    model = get_agent("dinowm-proprio").build(DinoWMProprio.presets["smoke"], 16, 10, "pusht").eval()
    model.proprio_mean.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    model.proprio_std.copy_(torch.tensor([2.0, 2.0, 4.0, 4.0]))
    return model


def test_proprio_is_embedded_into_every_patch_token():
    model = smoke_model()
    frames = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    states = torch.randn(2, 3, 7)
    z = model.encode(frames, states=states)
    d, p = model.config.encoder.width, model.tokens_per_frame
    assert z.shape == (2, 3, p, d + 10)
    torch.testing.assert_close(z[..., :d], DinoWM.encode(model, frames))  # visual slots: the frozen encoder's
    x = (states[..., [0, 1, 5, 6]] - torch.tensor([1.0, 2.0, 3.0, 4.0])) / torch.tensor([2.0, 2.0, 4.0, 4.0])
    expected = model.proprio_encoder(x)
    assert torch.equal(z[..., d:], expected[:, :, None].expand(-1, -1, p, -1))
    moved = states.clone()
    moved[..., 2:5] += 1.0  # block position and angle: not proprioception
    assert torch.equal(model.encode(frames, states=moved), z)
    with pytest.raises(ValueError, match="encodes frames with their states"):
        model.encode(frames)
    # the predictor keeps the visual and proprio slots and sees no later frame
    pred = model.predict(z, torch.randn(2, 3, 10))
    assert pred.shape == z.shape


def test_planning_cost_is_goal_mse_pixels_proprio():
    model = smoke_model()
    d = model.config.encoder.width
    pred, goal = torch.randn(5, 16, d + 10), torch.randn(5, 16, d + 10)
    goal[..., d:] = goal[:, :1, d:]  # the goal's proprio embedding is tiled over its patches
    pixels = ((pred[..., :d] - goal[..., :d]) ** 2).mean(dim=(1, 2))
    proprio = ((pred[:, 0, d:] - goal[:, 0, d:]) ** 2).mean(-1)
    torch.testing.assert_close(model.planning_cost(pred, goal), pixels + proprio)


def test_states_only_reach_agents_that_use_proprio():
    states = torch.zeros(1, 2, 7)
    assert proprio_kwargs(DinoWM(DinoWM.presets["smoke"], 16, 10), states) == {}
    assert proprio_kwargs(smoke_model(), states)["states"] is states
    with pytest.raises(ValueError, match="pass the frames' physical states"):
        proprio_kwargs(smoke_model(), None)


def test_smoke_train_and_eval_with_proprio(tmp_path):
    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), tmp_path / "data.h5", workers=1, progress=False)
    run = tmp_path / "train/two-room/dinowm-proprio-smoke-seed0"
    train("two-room", SMOKE, agent="dinowm-proprio", data=data, out=run, progress=False)
    log = pd.read_csv(run / "log.csv")
    assert {"visual_loss", "proprio_loss"} <= set(log.columns) and (log.proprio_loss.dropna() > 0).all()
    model = load_world_model(run, "two-room", "dinowm-proprio").model
    assert model.proprio_index.tolist() == [0, 1]
    assert (model.proprio_std != 1).all() and (model.proprio_mean.abs() > 0).all()  # the split's statistics
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=4)
    rec = evaluate("two-room", "dinowm-proprio", SMOKE, root=tmp_path, protocol=protocol, timing_calls=1,
                   warmup_calls=0, gif_episodes=0).record
    assert rec.episodes == 4 and rec.encoder == "self-pretrained"


def test_mpc_gives_the_context_and_goal_states_to_the_planner():
    """The states the model encodes while planning are the env's at the context frames, then the goal's."""
    import numpy as np

    from lewm_bench.data.actions import ActionCodec
    from lewm_bench.envs import make_env
    from lewm_bench.evaluation.mpc import context_indices, run_mpc
    from lewm_bench.evaluation.protocol import Task
    from lewm_bench.planning.cem import CEM

    model = get_agent("dinowm-proprio").build(DinoWMProprio.presets["smoke"], 16, 10, "two-room").eval()
    env = make_env("two-room", image_size=16)
    visited = []
    step = env.step_unrendered  # every env step, rendered (step calls it) or not

    def recording_step(action):
        out = step(action)
        visited.append(env.get_state().copy())
        return out

    env.step_unrendered = recording_step
    seen = []
    encode = model.encode

    def spy(frames, states=None):
        seen.append((len(visited), states.clone()))
        return encode(frames, states=states)

    model.encode = spy
    task = Task(0, 0, 1, np.array([10.0, 50.0]), np.array([50.0, 50.0]))
    visited.append(task.start_state)
    protocol = dataclasses.replace(PROTOCOLS["paper"], budget=12)
    run_mpc([env], [task], protocol, model, CEM(SMOKE.cem), ActionCodec(np.zeros(2), np.ones(2), 5), 3, 1,
            torch.device("cpu"))
    assert len(seen) == 3  # planned at steps 0, 5 and 10
    for n, states in seen:
        assert states.shape == (1, 4, 2)
        want = [visited[j] for j in context_indices(n - 1, 3, 5)] + [task.goal_state]
        np.testing.assert_allclose(states[0].numpy(), np.stack(want), rtol=0, atol=1e-5)
    assert not torch.equal(seen[1][1][0, -2], seen[0][1][0, -2])  # the agent moved between the plans
