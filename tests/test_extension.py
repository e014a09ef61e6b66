"""A new environment and a new agent are one definition each, through the public API only.

Both live in this file; nothing under ``lewm_bench/`` names them. The smoke suite then runs them
beside the built-ins, and both appear in ``summary.csv`` and in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench import cli
from lewm_bench.envs import DataSizes, EnvSpec, GoalEnv, make_env, register_env, unregister_env
from lewm_bench.registry import LossTerms, register_agent, unregister_agent


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
    assert set(summary.agent) == {"lewm", "pldm", "dinowm", "random", "toy-wm"}
    assert set(summary.env) == {"toy-point"}
    report = (out / "report" / "results.md").read_text()
    assert "Toy WM" in report and "ToyPoint" in report and "LeWM" in report
