"""GCBC, GCIVL, GCIQL: losses on tiny fixed batches against values computed by hand, the data table,
training and resuming through the trainer, acting."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lewm_bench.baselines.gcbc import GCBC
from lewm_bench.baselines.gcrl import GCIQL, GCIVL
from lewm_bench.baselines.goal_policy import GoalBatch, awr_weights, expectile_loss
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.clips import ClipDataset
from lewm_bench.errors import LewmBenchError
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import RegistryError, get_agent, register_agent
from lewm_bench.training import trainer
from lewm_bench.training.checkpoint import load_world_model
from lewm_bench.training.trainer import log_columns, train

SMOKE = PROFILES["smoke"]
ACTIONS = torch.tensor([[1.0, 0.0], [0.5, 1.5]])
ACTOR_OUT = [0.5, -0.5]  # squared errors per row (mean over 2 dims): 0.25 and (0 + 4) / 2 = 2


def constant(net: nn.Module, value: float | list[float]) -> None:
    """Make an MLP (or every member of an ensemble) output ``value`` whatever its input."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.as_tensor(value, dtype=torch.float32).expand_as(last.bias))


def members(ensemble: nn.Module, values: list[float]) -> None:
    for m, v in zip(ensemble.members, values):
        constant(m, v)


def batch(f: int) -> GoalBatch:
    z = torch.randn(2, f, generator=torch.Generator().manual_seed(0))
    return GoalBatch(z, z.flip(0), ACTIONS, z, z.flip(0), torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.0]))


def test_expectile_loss_and_awr_weights_by_hand():
    got = expectile_loss(torch.tensor([1.0, -1.0, 0.0]), torch.tensor([2.0, 2.0, -3.0]), 0.9)
    torch.testing.assert_close(got, torch.tensor([0.9 * 4, 0.1 * 4, 0.9 * 9]))
    torch.testing.assert_close(awr_weights(torch.tensor([0.0, 1.0, 10.0]), 3.0),
                               torch.tensor([1.0, math.exp(3.0), 100.0]))  # capped at 100


def test_gcbc_loss_is_the_squared_error_of_the_block():
    agent = GCBC(GCBC.presets["smoke"], 16, 2)
    constant(agent.actor, ACTOR_OUT)
    out = agent.loss(batch(agent.feature_dim))
    assert out.loss.item() == pytest.approx((0.25 + 2.0) / 2)


def test_gcivl_value_loss_by_hand():
    agent = GCIVL(GCIVL.presets["smoke"], 16, 2)
    members(agent.value, [-1.0, -3.0])
    members(agent.target_value, [-2.0, -4.0])
    constant(agent.actor, ACTOR_OUT)
    out = agent.loss(batch(agent.feature_dim))
    # q = r + .99 m min(-2, -4): [-4.96, 0]; weight from q - mean(-2, -4): [-1.96, 3] -> [0.1, 0.9]
    # q_1 - V_1 = [-1 - 1.98 + 1, 0 + 1] = [-1.98, 1]; q_2 - V_2 = [-4.96 + 3, 0 + 3] = [-1.96, 3]
    v1 = (0.1 * 1.98 ** 2 + 0.9 * 1.0) / 2
    v2 = (0.1 * 1.96 ** 2 + 0.9 * 9.0) / 2
    assert out.terms["value_loss"].item() == pytest.approx(v1 + v2, rel=1e-5)
    # constant values: advantage V(s', g) - V(s, g) = 0, every AWR weight 1 -> the plain squared error
    assert out.terms["adv_mean"].item() == 0 and out.terms["actor_loss"].item() == pytest.approx(1.125)


def test_gciql_losses_and_awr_weights_by_hand():
    agent = GCIQL(GCIQL.presets["smoke"], 16, 2)
    members(agent.value, [-2.0])
    members(agent.critic, [-1.0, -1.5])
    members(agent.target_critic, [-3.0, -2.5])
    constant(agent.actor, ACTOR_OUT)
    out = agent.loss(batch(agent.feature_dim))
    assert out.terms["value_loss"].item() == pytest.approx(0.1 * 1.0)  # min target Q -3 below V -2: weight 0.1
    # target r + .99 m V(s') = [-2.98, 0]; (Q1 - y)^2 + (Q2 - y)^2 = [1.98^2 + 1.48^2, 1 + 2.25]
    assert out.terms["critic_loss"].item() == pytest.approx((1.98 ** 2 + 1.48 ** 2 + 3.25) / 2, rel=1e-5)
    # advantage min(Q1, Q2) - V = 0.5 with alpha 3: weight e^1.5 on the squared errors 0.25 and 2
    assert out.terms["actor_loss"].item() == pytest.approx(math.exp(1.5) * 1.125, rel=1e-5)
    assert agent.config.alpha == 3.0 and GCIVL.presets["smoke"].alpha == 10.0


def test_target_networks_follow_by_polyak_averaging():
    agent = GCIQL(GCIQL.presets["smoke"], 16, 2)
    members(agent.critic, [1.0, 1.0])
    members(agent.target_critic, [0.0, 0.0])
    agent.after_step()
    bias = [m for m in agent.target_critic.members[0].modules() if isinstance(m, nn.Linear)][-1].bias
    assert bias.item() == pytest.approx(agent.config.tau)
    assert not any(p.requires_grad for p in agent.target_critic.parameters())


def test_a_policy_with_a_loss_must_offer_the_training_interface():
    class Half:
        kind = "policy"

        def act(self, observation, goal):
            return np.zeros((1, 2))

        def loss(self, batch, generator=None):
            return None

    with pytest.raises(RegistryError, match="config_class, presets, loss_terms, prepare, attach_data"):
        register_agent("half-policy", Half)
    assert get_agent("gcbc").trainable and not get_agent("random").trainable


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                        image_size=16)
    return collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)


def test_data_table_rows_are_every_frameskip_th_frame(data):
    agent = GCBC(GCBC.presets["smoke"], 16, 10)
    train_set = ClipDataset(data, "train", 1, 5)
    n = agent.attach_data(train_set, torch.device("cpu"), progress=False)
    d = agent.data
    lengths = [len(range(0, length, 5)) for length in _lengths(data)]
    assert len(d.features) == sum(lengths) and n == len(d.transitions) == sum(k - 1 for k in lengths)
    first, k0 = d.transitions[0].item(), lengths[0]
    assert first == 0 and d.final[0].item() == k0 - 1 and d.transitions[k0 - 1].item() == k0  # next episode
    clip = train_set[0]  # frames 0 and 5 of the first episode, and the block between them
    torch.testing.assert_close(d.features[:2], agent.features(clip.frames))
    torch.testing.assert_close(d.actions[0], clip.actions[0])
    b = agent.training_batch(torch.arange(4), torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.next_observations[0], d.features[1])


def _lengths(path) -> list[int]:
    from lewm_bench.data.dataset import open_dataset

    with open_dataset(path) as ds:
        return [int(ds.episode_length[e]) for e in ds.split_episodes("train")]


@pytest.mark.parametrize("agent", ["gciql"])  # GCBC trains through the same path (CLI test)
def test_train_resume_and_act_through_the_trainer(agent, data, tmp_path, monkeypatch):
    info = get_agent(agent)
    tcfg = info.train_config_for(SMOKE)
    train("two-room", SMOKE, agent=agent, data=data, out=tmp_path / "a", progress=False)
    real = trainer._epoch_order

    def interrupted(n, needed, seed, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(n, needed, seed, epoch)

    # interrupted after epoch 1, then resumed: the same weights and log as the uninterrupted run
    monkeypatch.setattr(trainer, "_epoch_order", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train("two-room", SMOKE, agent=agent, data=data, out=tmp_path / "b", progress=False)
    monkeypatch.setattr(trainer, "_epoch_order", real)
    train("two-room", SMOKE, agent=agent, data=data, out=tmp_path / "b", progress=False, resume=True)
    assert tcfg.epochs == 2 and tcfg.lr == 3e-4  # the agents' own recipe (OGBench's learning rate)
    log = pd.read_csv(tmp_path / "a" / "log.csv")
    assert list(log.columns) == log_columns(info.cls.loss_terms) and list(log.epoch) == [0, 1, 2]
    assert pd.read_csv(tmp_path / "b" / "log.csv").loss.tolist()[1:] == log.loss.tolist()[1:]
    a, b = (load_world_model(tmp_path / k, "two-room", agent) for k in "ab")
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    policy = a.model
    obs = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(LewmBenchError, match="set_action_codec"):
        policy.act(obs, obs)
    policy.set_action_codec(ActionCodec.from_stats(*a.run.action_stats(), a.run.frameskip))
    actions = policy.act(obs, obs)
    assert actions.shape == (5, 2) and np.abs(actions).max() <= 1.0
