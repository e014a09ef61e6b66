"""Probing (SPEC §7): how well can physical quantities be read from frozen embeddings?

Frames are drawn from the training split (to fit the probes) and from the held-out episodes (to
score them); each frame's state gives the env's physical quantities
(:meth:`GoalEnv.physical_quantities`: agent position in Two-Room; agent and block position and
block angle as (sin, cos) in PushT; end-effector and cube position in Cube). Embeddings are
flattened per frame (all patch tokens for patch models) and standardised with the training
statistics (features whose training std is below 1e-3 of the mean std are dropped), as are the targets (a
quantity constant over the training frames gets NaN scores and a note). Two probes per quantity:

- ``linear``: ridge regression in closed form (the dual form when the embedding is wider than the
  number of training frames);
- ``mlp``: two layers (hidden 256, ReLU), Adam, full-batch steps.

Scores on the held-out frames: MSE in standardised target units (1.0 = predicting the mean) and
Pearson r, both averaged over the quantity's components.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lewm_bench.analysis.config import ProbeConfig
from lewm_bench.data.dataset import open_dataset
from lewm_bench.envs import make_env


def sample_frames(env_name: str, data_path: str | os.PathLike[str], split: str, n: int, seed: int
                  ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` random frames (n, H, W, 3) of ``split`` and their physical quantities (name -> (n, k))."""
    rng = np.random.default_rng(seed)
    with open_dataset(data_path, env_name) as ds:
        rows = np.concatenate([np.arange(ds.episode_start[e], ds.episode_start[e] + ds.episode_length[e])
                               for e in ds.split_episodes(split)])
        rows = np.sort(rng.choice(rows, min(n, len(rows)), replace=False))
        frames, states = ds.pixels[rows], ds.states[rows]
        env = make_env(env_name, **dict(ds.meta.env_kwargs))
    try:
        per_frame = [env.physical_quantities(s) for s in states]
    finally:
        env.close()
    return frames, {k: np.stack([q[k] for q in per_frame]) for k in per_frame[0]}


@torch.no_grad()
def embed(model: Any, frames: np.ndarray, device: torch.device | str = "cpu", batch: int = 256) -> torch.Tensor:
    """Frozen embeddings of single frames, flattened: (n, H, W, 3) uint8 -> (n, features) float32 on CPU."""
    model.eval()
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(frames[i:i + batch]).permute(0, 3, 1, 2)[:, None].to(device)
        out.append(model.encode(x).float().flatten(1).cpu())
    return torch.cat(out)


def fit_linear(x: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """Ridge weights W (features, targets) with a bias column appended to ``x`` (primal or dual form)."""
    x = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    y = y.double()
    n, d = x.shape
    if d <= n:
        return torch.linalg.solve(x.T @ x + ridge * torch.eye(d, dtype=x.dtype), x.T @ y).float()
    return (x.T @ torch.linalg.solve(x @ x.T + ridge * torch.eye(n, dtype=x.dtype), y)).float()


def predict_linear(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1)], 1) @ w


def fit_mlp(x: torch.Tensor, y: torch.Tensor, cfg: ProbeConfig) -> nn.Module:
    torch.manual_seed(cfg.seed)
    mlp = nn.Sequential(nn.Linear(x.shape[1], cfg.mlp_hidden), nn.ReLU(), nn.Linear(cfg.mlp_hidden, y.shape[1]))
    opt = torch.optim.Adam(mlp.parameters(), lr=cfg.mlp_lr, weight_decay=1e-4)
    for _ in range(cfg.mlp_steps):
        loss = nn.functional.mse_loss(mlp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mlp.eval()


def scores(pred: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """(MSE, Pearson r) averaged over target components."""
    mse = float((pred - target).pow(2).mean())
    p, t = pred - pred.mean(0), target - target.mean(0)
    r = (p * t).sum(0) / (p.norm(dim=0) * t.norm(dim=0)).clamp_min(1e-12)
    return mse, float(r.mean())


def probe_embeddings(x_train: torch.Tensor, q_train: dict[str, np.ndarray], x_test: torch.Tensor,
                     q_test: dict[str, np.ndarray], cfg: ProbeConfig) -> pd.DataFrame:
    """Fit and score both probes for every quantity; one row per (quantity, probe)."""
    mu, sd = x_train.mean(0), x_train.std(0)
    live = sd > 1e-3 * sd.mean().clamp_min(1e-12)  # (near-)constant features over the training frames: dropped
    xs, xt = (x_train[:, live] - mu[live]) / sd[live], (x_test[:, live] - mu[live]) / sd[live]
    rows = []
    for name, values in q_train.items():
        y = torch.as_tensor(values, dtype=torch.float32)
        y_mu, y_sd = y.mean(0), y.std(0)
        if (y_sd <= 1e-8 * (y_mu.abs() + 1)).any():
            rows += [{"quantity": name, "probe": p, "mse": float("nan"), "pearson_r": float("nan"),
                      "note": "constant over the training frames"} for p in ("linear", "mlp")]
            continue
        ys = (y - y_mu) / y_sd
        yt = (torch.as_tensor(q_test[name], dtype=torch.float32) - y_mu) / y_sd
        linear = predict_linear(fit_linear(xs, ys, cfg.ridge), xt)
        mlp = fit_mlp(xs, ys, cfg)
        for probe, pred in (("linear", linear), ("mlp", mlp(xt).detach())):
            mse, r = scores(pred, yt)
            rows.append({"quantity": name, "probe": probe, "mse": mse, "pearson_r": r,
                         "train_frames": len(xs), "test_frames": len(xt), "features": xs.shape[1], "note": ""})
    return pd.DataFrame(rows)


def probe(model: Any, env_name: str, data_path: str | os.PathLike[str], cfg: ProbeConfig,
          device: torch.device | str = "cpu") -> pd.DataFrame:
    """Linear and MLP probes of ``model``'s frozen embeddings on ``env_name``'s dataset (module docstring)."""
    f_train, q_train = sample_frames(env_name, data_path, "train", cfg.train_frames, cfg.seed)
    f_test, q_test = sample_frames(env_name, data_path, "held_out", cfg.test_frames, cfg.seed + 1)
    return probe_embeddings(embed(model, f_train, device), q_train, embed(model, f_test, device), q_test, cfg)
