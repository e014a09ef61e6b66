"""SIGReg: the Sketched Isotropic Gaussian Regulariser (SPEC §5.2), single- and multi-process.

For embeddings ``Z`` of shape (T, N, D): draw ``M`` random unit directions (shared by the T
frames), project, and compare the empirical characteristic function of every 1-D projection with
the standard normal's at 17 knots on [0, 3]; the statistic per (frame, direction) is
``N * sum_j w_j * err_j`` with trapezoid weights (doubled for the symmetric half) times the
Gaussian window, and SIGReg is its mean. Expected value for exactly standard-normal embeddings is
about 1.05; for embeddings collapsed to a constant it grows as about 0.40 * N.

With ``torch.distributed`` initialised, every rank draws the same directions (the caller passes
a generator seeded identically on all ranks, e.g. from the step number) and the cos/sin means are
summed over ranks before the error, with ``N`` the global batch: the value equals the
single-process statistic of the concatenated batch. The all-reduce is differentiable and its
backward sums over ranks, so each rank's gradient is ``world_size`` times its exact partial
derivative; DDP's gradient averaging over ranks then gives exactly the single-process gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the backward sums the incoming gradients over ranks too."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class _CharacteristicSums(torch.autograd.Function):
    """Sums over the samples of cos(t_k p) and sin(t_k p): projections p (T, N, M), knots t (K,) -> two (T, M, K).

    The backward reuses the forward's cosines and sines: d/dp cos(t p) = -t sin(t p) and d/dp sin(t p) = t cos(t p).
    Autograd through ``torch.cos`` / ``torch.sin`` would evaluate both functions again over all T x N x M x K
    arguments (a fifth of a cpu-profile training step in a profile); a step runs 1.00-1.18x faster without them
    (``results/bench/sigreg-avx512.txt``).
    """

    @staticmethod
    def forward(ctx, p: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        arg = p.unsqueeze(-1) * t
        cos, sin = torch.cos(arg), torch.sin(arg)
        ctx.save_for_backward(cos, sin, t)
        return cos.sum(1), sin.sum(1)

    @staticmethod
    def backward(ctx, grad_cos: Tensor, grad_sin: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        cos, sin, t = ctx.saved_tensors
        return (cos * grad_sin.unsqueeze(1) - sin * grad_cos.unsqueeze(1)) @ t, None


def knots_and_weights(num_knots: int = 17, t_max: float = 3.0, device=None) -> tuple[Tensor, Tensor]:
    """Integration knots on [0, t_max] and their weights (trapezoid, doubled, times exp(-t^2/2))."""
    t = torch.linspace(0.0, t_max, num_knots, device=device, dtype=torch.float32)
    dt = t_max / (num_knots - 1)
    w = torch.full((num_knots,), 2 * dt, device=device, dtype=torch.float32)
    w[0] = w[-1] = dt
    return t, w * torch.exp(-0.5 * t**2)


def random_directions(dim: int, num: int, generator: torch.Generator | None = None, device=None) -> Tensor:
    """``num`` Gaussian directions in R^dim normalised to unit length: (dim, num)."""
    gen_device = generator.device if generator is not None else device
    a = torch.randn(dim, num, generator=generator, device=gen_device, dtype=torch.float32)
    return (a / a.norm(dim=0, keepdim=True)).to(device)


def sigreg(z: Tensor, num_directions: int = 1024, num_knots: int = 17, generator: torch.Generator | None = None,
           directions: Tensor | None = None) -> Tensor:
    """SIGReg of ``z`` (T, N, D) -> scalar; distributed when ``torch.distributed`` is initialised.

    Args:
        z: embeddings, T frames of N samples of dimension D.
        num_directions: M random directions (ignored when ``directions`` is given).
        num_knots: integration knots on [0, 3].
        generator: source of the directions; must be seeded identically on every rank.
        directions: explicit (D, M) unit directions instead of random ones.
    """
    if z.dim() != 3:
        raise ValueError(f"sigreg expects embeddings of shape (T, N, D); got {tuple(z.shape)}")
    z = z.float()
    if directions is None:
        directions = random_directions(z.shape[-1], num_directions, generator, z.device)
    t, w = knots_and_weights(num_knots, device=z.device)
    n = torch.tensor(float(z.shape[1]), device=z.device)
    cos_sum, sin_sum = _CharacteristicSums.apply(z @ directions, t)  # (T, M, K) each
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        cos_sum, sin_sum = _AllReduceSum.apply(cos_sum), _AllReduceSum.apply(sin_sum)
        dist.all_reduce(n)
    err = (cos_sum / n - torch.exp(-0.5 * t**2)) ** 2 + (sin_sum / n) ** 2
    return (n * (err * w).sum(-1)).mean()
