"""A new environment and a new agent are one definition each, through the public API only.

Both live in this file; nothing under ``lewm_bench/`` names them. The smoke suite then runs them
beside the built-ins, and both appear in ``summary.csv`` and in the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench import cli
from lewm_bench.baselines.gcbc import GCBC
from lewm_bench.collect.policies import CollectorConfig
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.envs import DataSizes, EnvSpec, GoalEnv, make_env, register_env, unregister_env
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import LossTerms, get_agent, register_agent, unregister_agent
from lewm_bench.training.trainer import train


class ToyPointEnv(GoalEnv):
    """A dot on a 1 x 1 square moved by 2-D velocity actions; success within 0.1 of the goal."""

    action_dim = 2
    state_dim = 2
    object_colour = (255, 255, 255)

    def __init__(self, image_size: int = 16, render_mode: str | None = "rgb_array") -> None:
        super().__init__(image_size, render_mode)
        self._pos = np.full(2, 0.5)

    @staticmethod
    def is_success(state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Dot within 0.1 of the goal position."""
        return ToyPointEnv.distance(state, goal_state) < 0.1

    @staticmethod
    def distance(state: np.ndarray, goal_state: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(state) - np.asarray(goal_state)))

    def get_state(self) -> np.ndarray:
        return self._pos.copy()

    def _set_state(self, state: np.ndarray) -> None:
        self._pos = np.asarray(state, np.float64).copy()

    def _sample_state(self) -> np.ndarray:
        return self.np_random.uniform(0.1, 0.9, 2)

    def _simulate(self, action: np.ndarray) -> None:
        self._pos = np.clip(self._pos + 0.05 * action, 0.0, 1.0)

    def _render(self) -> np.ndarray:
        img = np.zeros((self.image_size, self.image_size, 3), np.uint8)
        x, y = np.minimum((self._pos * self.image_size).astype(int), self.image_size - 1)
        img[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = self.rendered_object_colour
        return img

    def teleport(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(0.1, 0.9, 2)

    def physical_quantities(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"position": np.asarray(state)[:2]}


@dataclass(frozen=True)
class ToyConfig:
    width: int = 8
    history: int = 1


class ToyWorldModel(nn.Module):
    """Pooled pixels -> linear embedding; an MLP predicts the next embedding (a toy, not a method)."""

    kind = "world_model"
    config_class = ToyConfig
    presets = {"paper": ToyConfig(), "cpu": ToyConfig(), "smoke": ToyConfig()}
    loss_terms = ("pred_loss", "variance")
    display_name, in_grid = "Toy WM", True
    tokens_per_frame = encoder_tokens_per_frame = 1

    def __init__(self, config: ToyConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config = config
        self.encoder = nn.Linear(3 * 4 * 4, config.width)
        self.predictor = nn.Linear(config.width + action_dim, config.width)

    @property
    def history(self) -> int:
        return self.config.history

    def encode(self, frames: Tensor) -> Tensor:
        b, t = frames.shape[:2]
        x = F.adaptive_avg_pool2d(frames.flatten(0, 1).float() / 255.0, 4).flatten(1)
        return self.encoder(x).view(b, t, -1)

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        return embeddings + self.predictor(torch.cat([embeddings, actions.to(embeddings.dtype)], -1))

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        z, out = history[:, -1:], []
        for k in range(history.shape[1] - 1, actions.shape[1]):
            z = self.predict(z, actions[:, k:k + 1])
            out.append(z)
        return torch.cat(out, 1)

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        z = self.encode(frames)
        pred_loss = F.mse_loss(self.predict(z[:, :-1], actions), z[:, 1:])
        variance = F.relu(1.0 - z.flatten(0, 1).std(0)).mean()
        return LossTerms(pred_loss + variance, {"pred_loss": pred_loss, "variance": variance}, z.detach())

    forward = loss


@pytest.fixture
def toy():
    spec = register_env(EnvSpec.of(ToyPointEnv, "toy-point", data={"paper": DataSizes(200, 60, 64)}))
    register_agent("toy-wm", ToyWorldModel)
    yield spec
    unregister_env("toy-point")
    unregister_agent("toy-wm")


def test_a_new_env_is_described_by_its_class(toy):
    assert (toy.gym_id, toy.action_dim, toy.state_dim) == ("lewm_bench/ToyPoint-v0", 2, 2)
    assert toy.success == "Dot within 0.1 of the goal position"
    assert toy.data_for("smoke") == DataSizes(8, 40, 16)  # scaled from the paper sizes
    assert toy.data_for("cpu").image_size == 64 and toy.data_for("cpu").episodes == 200
    assert isinstance(make_env("toy-point", image_size=16), ToyPointEnv)


def test_smoke_suite_runs_a_new_env_and_agent_beside_the_built_ins(toy, tmp_path, capsys):
    out = tmp_path / "runs"
    code = cli.main(["run", "--suite", "smoke", "--envs", "toy-point", "--workers", "1", "--out", str(out),
                     "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.agent) == {"lewm", "pldm", "dinowm", "gcbc", "gciql", "gcivl", "random", "toy-wm"}
    assert set(summary.env) == {"toy-point"}
    report = (out / "report" / "results.md").read_text()
    assert "Toy WM" in report and "ToyPoint" in report and "LeWM" in report


@dataclass(frozen=True)
class StraightCollector(CollectorConfig):
    """Each episode heads in one random direction (plus noise): where the goal lies says which action to take."""

    name: ClassVar[str] = "toy-straight"
    envs: ClassVar[tuple[str, ...] | None] = None
    noise: float = 0.3

    def policy(self) -> _Straight:
        return _Straight(self.noise)


class _Straight:
    def __init__(self, noise: float) -> None:
        self.noise, self.direction = noise, np.zeros(2)

    def reset(self, env: GoalEnv, rng: np.random.Generator) -> None:
        self.direction = rng.uniform(-1.0, 1.0, 2)

    def act(self, env: GoalEnv, rng: np.random.Generator) -> np.ndarray:
        return np.clip(self.direction + rng.normal(0.0, self.noise, 2), -1.0, 1.0).astype(np.float32)


@pytest.fixture
def one_thread():
    """Two threads on a shared 2-core machine can be 20x slower than one for these tiny networks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gcbc_trained_for_seconds_beats_random_on_the_toy(toy, tmp_path, one_thread):
    smoke = PROFILES["smoke"]
    data = collect(CollectConfig(env="toy-point", collector=StraightCollector(), episodes=100, max_steps=40,
                                 image_size=16), tmp_path / "toy.h5", workers=1, progress=False)
    # GCBC's smoke preset with the 4 x 4 patch grid unpooled and a 64-64 actor; 200 steps of 64 transitions
    config = dataclasses.replace(GCBC.presets["smoke"], patch_pool=1, actor_hidden=(64, 64))
    tcfg = dataclasses.replace(get_agent("gcbc").train_config_for(smoke), epochs=1, steps_per_epoch=200,
                               batch_size=64, lr=1e-3)
    train("toy-point", smoke, agent="gcbc", data=data, out=tmp_path / "gcbc", progress=False, model_config=config,
          train_config=tcfg)
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=30)
    rates = {agent: evaluate("toy-point", agent, smoke, checkpoint=tmp_path / "gcbc" if agent == "gcbc" else None,
                             data=data, protocol=protocol, root=tmp_path, timing_calls=3, warmup_calls=1,
                             gif_episodes=0).record for agent in ("gcbc", "random")}
    gcbc, rnd = rates["gcbc"], rates["random"]
    assert gcbc.success_ci_low > rnd.success_ci_high, (gcbc.success_rate, rnd.success_rate)  # measured: 100% vs 57%
    assert gcbc.timed_call == "decision" and gcbc.plan_calls == 3 and gcbc.params_trainable > 0
