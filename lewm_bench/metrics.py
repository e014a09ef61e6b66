"""Representation metrics shared by training logs and evaluation (SPEC §7)."""

from __future__ import annotations

import torch
from torch import Tensor


def effective_rank(z: Tensor) -> float:
    """exp(entropy) of the normalised singular values of centred embeddings (N, D); 1 = collapsed, D = isotropic."""
    z = z.float().reshape(-1, z.shape[-1])
    s = torch.linalg.svdvals(z - z.mean(0, keepdim=True))
    if s.sum() <= 0:
        return 1.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def embedding_std(z: Tensor) -> tuple[float, float]:
    """(mean, min) over dimensions of the per-dimension standard deviation of embeddings (..., D)."""
    std = z.float().reshape(-1, z.shape[-1]).std(0)
    return float(std.mean()), float(std.min())


def straightness(z: Tensor) -> float:
    """Mean cosine between consecutive latent velocities of trajectories (B, T, D), T >= 3.

    ``v_t = z_{t+1} - z_t``; the value is the mean over trajectories and t of cos(v_t, v_{t+1}).
    """
    if z.shape[1] < 3:
        raise ValueError(f"straightness needs at least 3 frames per trajectory; got {z.shape[1]}")
    v = z[:, 1:].float() - z[:, :-1].float()
    return float(torch.nn.functional.cosine_similarity(v[:, :-1], v[:, 1:], dim=-1).mean())
