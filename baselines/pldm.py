"""PLDM as compared in the LeWM paper (SPEC §5.3): LeWM's architecture with a 7-term VICReg-style loss.

prediction MSE + alpha * variance hinge + beta * covariance (both per frame, over the batch)
+ gamma * temporal similarity + zeta * temporal variance + nu * temporal covariance (over the
frames of each clip) + mu * inverse dynamics (an MLP predicting the action block from consecutive
embeddings). Coefficients: the LeWM authors' grid-search optimum on PushT. Every term is logged,
including those weighted zero; the inverse-dynamics head is a submodule, so the optimiser always
gets its parameters (the reference implementation forgot them).

The terms follow stable-worldmodel's ``PLDMLoss`` / ``VCReg`` (the code that produced the LeWM paper's
PLDM row and tuned these coefficients): the embeddings are centred over the batch (per frame and
dimension) before the two temporal terms, the covariance terms divide by D(D-1) (PLDM's
``adjust_cov``), and the temporal covariance is taken over the frames of each batch-centred clip
without re-centring over time. PLDM's own repository differs: its batch terms use the first frame
only and its temporal terms the later frames, centred over time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.models.lewm import PRESETS as LEWM_PRESETS
from lewm_bench.models.lewm import LeWM, LeWMConfig
from lewm_bench.registry import LossTerms, register_agent

EPS = 1e-4


@dataclass(frozen=True)
class PLDMConfig(LeWMConfig):
    """LeWM's architecture fields (``sigreg_*`` unused, weight 0) plus PLDM's six loss weights."""

    sigreg_weight: float = 0.0
    variance_weight: float = 18.0
    """alpha: variance hinge per frame over the batch."""
    covariance_weight: float = 12.0
    """beta: squared off-diagonal covariance per frame over the batch, divided by D(D-1)."""
    time_similarity_weight: float = 0.2
    """gamma: squared distance between consecutive embeddings, averaged over dimensions (an MSE, like the
    prediction term; SPEC writes the sum, which is D = 192 times larger)."""
    time_variance_weight: float = 0.7
    """zeta: variance hinge over the frames of each clip, after centring over the batch."""
    time_covariance_weight: float = 0.0
    """nu: off-diagonal covariance over the frames of each batch-centred clip, divided by D(D-1)."""
    inverse_dynamics_weight: float = 0.0
    """mu: inverse-dynamics MSE."""
    inverse_dynamics_hidden: int = 512


def _with_pldm_loss(arch: LeWMConfig) -> PLDMConfig:
    """LeWM's architecture ``arch`` with PLDM's loss (the paper compares them at equal architecture)."""
    fields = {f.name: getattr(arch, f.name) for f in dataclasses.fields(LeWMConfig)}
    return PLDMConfig(**dict(fields, sigreg_weight=0.0))


PRESETS = MappingProxyType({name: _with_pldm_loss(arch) for name, arch in LEWM_PRESETS.items()})
"""LeWM's architecture at every profile, with PLDM's loss."""


def variance_hinge(z: Tensor, dim: int = 0) -> Tensor:
    """Mean over the other axes of ReLU(1 - sqrt(Var + eps)), the unbiased variance taken along ``dim``."""
    std = torch.sqrt(z.float().var(dim=dim) + EPS)
    return F.relu(1.0 - std).mean()


def covariance_penalty(z: Tensor, center: bool = True) -> Tensor:
    """Sum of squared off-diagonal covariances / (D (D - 1)) for samples (N, D), batched over leading axes
    (..., N, D) and averaged over them; the covariance is Z^T Z / (N - 1), Z centred over the N samples
    unless ``center`` is False (then taken about zero, as the reference's temporal covariance does)."""
    z = z.float()
    if center:
        z = z - z.mean(-2, keepdim=True)
    n, d = z.shape[-2:]
    cov = z.transpose(-1, -2) @ z / max(n - 1, 1)  # (..., D, D)
    off = cov - torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1))
    return (off.pow(2).sum((-1, -2)) / max(d * (d - 1), 1)).mean()


@register_agent("pldm")
class PLDM(LeWM):
    """PLDM: LeWM's architecture trained with the 7-term variance/covariance/temporal loss (6 tunable weights)."""

    config_class = PLDMConfig
    presets = PRESETS
    display_name, colour, in_grid, order = "PLDM", "C1", True, 1
    loss_terms = ("pred_loss", "variance", "covariance", "time_similarity", "time_variance", "time_covariance",
                  "inverse_dynamics")

    def __init__(self, config: PLDMConfig, image_size: int, action_dim: int) -> None:
        super().__init__(config, image_size, action_dim)
        d = config.width
        self.inverse_dynamics = nn.Sequential(nn.Linear(2 * d, config.inverse_dynamics_hidden), nn.GELU(),
                                              nn.Linear(config.inverse_dynamics_hidden, action_dim))

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        """Loss of a batch of clips: frames (B, h+1, 3, H, W), action blocks (B, h, A)."""
        cfg: PLDMConfig = self.config  # type: ignore[assignment]
        z = self.encode(frames)  # (B, T, D)
        pred = self.predict(z[:, :-1], actions)
        zc = z.float() - z.float().mean(0, keepdim=True)  # (B, T, D) centred over the batch, per frame and dim
        terms = {
            "pred_loss": F.mse_loss(pred.float(), z[:, 1:].float()),
            "variance": variance_hinge(z, dim=0),  # per frame and dim, over the batch
            "covariance": covariance_penalty(z.transpose(0, 1)),  # per frame: (T, B, D)
            "time_similarity": F.mse_loss(z[:, 1:].float(), z[:, :-1].float()),
            "time_variance": variance_hinge(zc, dim=1),  # per clip and dim, over its batch-centred frames
            "time_covariance": covariance_penalty(zc, center=False),  # per clip: (B, T, D), not re-centred
            "inverse_dynamics": F.mse_loss(self.inverse_dynamics(torch.cat([z[:, :-1], z[:, 1:]], -1)).float(),
                                           actions.float()),
        }
        weights = (1.0, cfg.variance_weight, cfg.covariance_weight, cfg.time_similarity_weight,
                   cfg.time_variance_weight, cfg.time_covariance_weight, cfg.inverse_dynamics_weight)
        loss = sum(w * terms[k] for w, k in zip(weights, self.loss_terms))
        return LossTerms(loss, terms, z.detach())

    forward = loss
