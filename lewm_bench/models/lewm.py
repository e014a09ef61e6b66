"""LeWorldModel (LeWM): a JEPA world model trained end to end from pixels with SIGReg.

Encoder (ViT, or a small CNN on CPU profiles) -> BatchNorm projector -> one embedding per frame.
A causal transformer predicts the next embedding of every frame from the embeddings so far, with
the action block of each step injected through AdaLN-zero; its output passes through a second
BatchNorm projector. Loss: MSE between predicted and actual next embeddings (teacher forcing, no
stop-gradient, no EMA) + ``sigreg_weight`` * SIGReg over the embeddings of every frame of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.models.layers import (
    KV,
    ActionEmbedder,
    CausalPredictor,
    CNNEncoder,
    Projector,
    ViTEncoder,
    count_parameters,
    frames_to_float,
    windowed_rollout,
)
from lewm_bench.models.sigreg import sigreg
from lewm_bench.registry import LossTerms, register_agent


@dataclass(frozen=True)
class EncoderConfig:
    kind: str = "vit"
    """``vit`` (the paper) or ``cnn`` (stride-2 conv stack, for CPU profiles)."""
    patch_size: int = 14
    """ViT patch size."""
    depth: int = 12
    """ViT layers."""
    heads: int = 3
    """ViT heads."""
    mlp_ratio: float = 4.0
    channels: tuple[int, ...] = (32, 64, 128, 256)
    """CNN channels, one stride-2 layer each."""

    def __post_init__(self) -> None:
        if self.kind not in ("vit", "cnn"):
            raise ValueError(f"encoder kind must be 'vit' or 'cnn'; got {self.kind!r}")


@dataclass(frozen=True)
class PredictorConfig:
    depth: int = 6
    heads: int = 16
    head_dim: int = 64
    mlp_dim: int = 2048
    dropout: float = 0.1


@dataclass(frozen=True)
class LeWMConfig:
    """Architecture and loss of LeWM. Defaults are the paper's (SPEC §5.1)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    width: int = 192
    """Encoder width and embedding dimension."""
    projector_hidden: int = 2048
    action_smooth_dim: int = 10
    action_hidden: int = 768
    history: int = 3
    """Frames of context the predictor is trained with (its positional embedding length)."""
    sigreg_weight: float = 0.09
    """lambda: 0.09 in the released code (0.1 in the paper text)."""
    sigreg_directions: int = 1024
    sigreg_knots: int = 17


PRESETS: MappingProxyType[str, LeWMConfig] = MappingProxyType({
    "paper": LeWMConfig(),
    # A 4-layer CNN encoder (allowed by the paper's ResNet-18 ablation) and a 4-layer predictor,
    # sized by measurement to train in minutes on 2 cores (README: Training).
    "cpu": LeWMConfig(
        encoder=EncoderConfig(kind="cnn", channels=(32, 64, 128, 256)),
        predictor=PredictorConfig(depth=4, heads=4, head_dim=48, mlp_dim=768, dropout=0.1),
        projector_hidden=1024),
    "smoke": LeWMConfig(
        encoder=EncoderConfig(kind="vit", patch_size=4, depth=1, heads=2),
        predictor=PredictorConfig(depth=1, heads=2, head_dim=16, mlp_dim=64),
        width=32, projector_hidden=64, action_hidden=64, sigreg_directions=64),
})
"""LeWM's architecture and loss per profile."""


@register_agent("lewm")
class LeWM(nn.Module):
    """LeWorldModel: JEPA trained end to end from pixels, prediction MSE + lambda * SIGReg, one token per frame.

    Args:
        config: architecture and loss.
        image_size: side of the square input frames.
        action_dim: size of one action block (frameskip x env action dim).
    """

    def __init__(self, config: LeWMConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config, self.image_size, self.action_dim = config, image_size, action_dim
        enc, pred, d = config.encoder, config.predictor, config.width
        if enc.kind == "vit":
            self.encoder: nn.Module = ViTEncoder(image_size, enc.patch_size, d, enc.depth, enc.heads, enc.mlp_ratio)
        else:
            self.encoder = CNNEncoder(image_size, enc.channels, d)
        self.projector = Projector(d, config.projector_hidden)
        self.action_embedder = ActionEmbedder(action_dim, d, config.action_smooth_dim, config.action_hidden)
        self.predictor = CausalPredictor(d, pred.depth, pred.heads, pred.head_dim, pred.mlp_dim, pred.dropout,
                                         config.history)
        self.pred_projector = Projector(d, config.projector_hidden)
        # Initialisation as in the reference: the encoder initialises itself (ViT: Hugging Face's scheme;
        # CNN, which has no reference counterpart: truncated normal std 0.02); the projectors, the action
        # embedder and the predictor keep PyTorch's default init (predictor positional embedding std 1).

    kind = "world_model"
    config_class = LeWMConfig
    presets = PRESETS
    loss_terms = ("pred_loss", "sigreg")
    encoder_kind = "end-to-end"
    display_name, colour, in_grid, order = "LeWM", "C0", True, 0
    kv_cache = True
    """Rollouts reuse known work: the earlier tokens' keys and values while the predictor's window grows, and the
    context frames shared by every candidate (:func:`~lewm_bench.models.layers.windowed_rollout`; the same outputs
    up to float rounding, fewer FLOPs). ``bench planning`` sets it False on an instance for its before/after."""

    # ------------------------------------------------------------------ world-model interface
    @property
    def embed_dim(self) -> int:
        return self.config.width

    @property
    def history(self) -> int:
        """Frames of context the predictor was trained with."""
        return self.config.history

    @property
    def tokens_per_frame(self) -> int:
        """Latent tokens per frame seen by the predictor."""
        return 1

    @property
    def encoder_tokens_per_frame(self) -> int:
        return self.encoder.tokens_per_frame

    def encode(self, frames: Tensor) -> Tensor:
        """Frames (B, T, 3, H, W) (uint8 or float in [-1, 1]) -> embeddings (B, T, D)."""
        b, t = frames.shape[:2]
        x = frames_to_float(frames.flatten(0, 1))
        return self.projector(self.encoder(x)).view(b, t, -1)

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        """Next-embedding predictions for every position: (B, T, D), (B, T, A) -> (B, T, D)."""
        return self.pred_projector(self.predictor(embeddings, self.action_embedder(actions)))

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        """Autoregressive prediction from a history of embeddings.

        Args:
            history: (B, h, D) embeddings of the last h frames.
            actions: (B, h - 1 + H, A) action blocks: the h - 1 taken between the history frames,
                then the H to roll out (block i follows frame i).

        Returns:
            (B, H, D) predicted embeddings of the H next frames. The predictor sees at most the
            last ``config.history`` frames, the context it was trained with.
        """
        # Every block's modulation of every action block, once for all steps: a block's modulation depends on its
        # action alone, while a sliding window would recompute it for each of the (up to ``history``) windows it is in.
        mods = self.predictor.modulations(self.action_embedder(actions))  # (B, h - 1 + H, depth, 6D)

        def step(span: slice, embs: Tensor, past: list[KV] | None, keep: bool,
                 rows: Tensor | None) -> tuple[Tensor, list[KV] | None]:
            m = mods[:, span] if rows is None else mods[rows, span]
            out = self.predictor(embs, m, past=past, keep=keep, newest=True, modulated=True)  # only the newest
            out, cache = out if keep else (out, None)
            return self.pred_projector(out), cache

        return windowed_rollout(history, actions, self.config.history, self.kv_cache, step)

    # ----------------------------------------------------------------------------- training
    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        """Loss of a batch of clips: frames (B, h+1, 3, H, W), action blocks (B, h, A)."""
        z = self.encode(frames)  # (B, h+1, D)
        pred = self.predict(z[:, :-1], actions)  # (B, h, D)
        pred_loss = F.mse_loss(pred.float(), z[:, 1:].float())
        reg = sigreg(z.transpose(0, 1), self.config.sigreg_directions, self.config.sigreg_knots, generator)
        return LossTerms(pred_loss + self.config.sigreg_weight * reg, {"pred_loss": pred_loss, "sigreg": reg},
                         z.detach())

    forward = loss  # DDP wraps forward

    def parameter_counts(self) -> dict[str, int]:
        return {"encoder": count_parameters(self.encoder), "projector": count_parameters(self.projector),
                "predictor": count_parameters(self.predictor),
                "pred_projector": count_parameters(self.pred_projector),
                "action_embedder": count_parameters(self.action_embedder), "total": count_parameters(self)}
