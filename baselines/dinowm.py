"""DINO-WM-style world model (SPEC §5.4): frozen patch-token encoder, predictor over all patches.

Each frame is encoded by a frozen ViT into P patch tokens (DINOv2 ViT-S/14 at 196 px: 196 tokens of
width 384; CLS dropped). The action block is embedded to 10 dimensions, tiled over the frame's
patches and concatenated to every token (width 394). A ViT predictor with a learned positional
embedding over history x patches and a frame-block-causal mask (a token sees every token of its own
and earlier frames) predicts the next frame's patch tokens; loss = MSE to the (frozen, hence
detached) next-frame tokens. Planning cost: mean squared error over all patches of the last
predicted frame against the goal's patches.

The encoder is either real DINOv2 (``encoder_weights``: a local official-layout checkpoint) or the
same architecture pre-trained by the suite on the env's frames (see :mod:`lewm_bench.baselines.dinov2`);
``encoder_kind`` (``dinov2`` | ``self-pretrained``) is recorded in every result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.baselines.dinov2 import PatchEncoderConfig, PatchViT, load_dinov2_weights, preprocess, pretrain_masked
from lewm_bench.models.layers import ViTBlock
from lewm_bench.models.lewm import PredictorConfig
from lewm_bench.registry import LossTerms, register_agent

if TYPE_CHECKING:
    from lewm_bench.data.clips import ClipDataset


@dataclass(frozen=True)
class EncoderPretrainConfig:
    """Masked-patch autoencoding of the frozen encoder when no DINOv2 weights are given."""

    steps: int = 20_000
    batch_size: int = 128
    lr: float = 5e-4
    mask_ratio: float = 0.5


@dataclass(frozen=True)
class DinoWMConfig:
    """Defaults are the paper's DINO-WM (SPEC §5.4)."""

    encoder: PatchEncoderConfig = field(default_factory=PatchEncoderConfig)
    encoder_weights: str | None = None
    """Local DINOv2 checkpoint (official layout); None: pre-train the encoder on the env's frames."""
    pretrain: EncoderPretrainConfig = field(default_factory=EncoderPretrainConfig)
    action_embed_dim: int = 10
    """Width of the action embedding concatenated to every patch token."""
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    """ViT predictor: 6 layers, 16 heads of 64, MLP 2048 (as DINO-WM)."""
    history: int = 3


PRESETS: MappingProxyType[str, DinoWMConfig] = MappingProxyType({
    "paper": DinoWMConfig(),
    # 64 px input, 16 px patches: 16 patch tokens per frame (48 predictor tokens at history 3) so that a
    # CPU evaluation finishes in minutes; a 4-layer encoder of width 128 pre-trained on the env's frames.
    "cpu": DinoWMConfig(
        encoder=PatchEncoderConfig(input_size=64, patch_size=16, width=128, depth=4, heads=4, pos_grid=4),
        pretrain=EncoderPretrainConfig(steps=1500, batch_size=128, lr=1e-3),
        predictor=PredictorConfig(depth=4, heads=4, head_dim=32, mlp_dim=512, dropout=0.1)),
    "smoke": DinoWMConfig(
        encoder=PatchEncoderConfig(input_size=16, patch_size=4, width=32, depth=1, heads=2, pos_grid=4),
        pretrain=EncoderPretrainConfig(steps=4, batch_size=8, lr=1e-3),
        predictor=PredictorConfig(depth=1, heads=2, head_dim=16, mlp_dim=64)),
})


def frame_block_causal_mask(frames: int, tokens_per_frame: int, device: torch.device | None = None) -> Tensor:
    """Boolean (frames * P, frames * P): True where the query's frame is at or after the key's frame."""
    frame = torch.arange(frames * tokens_per_frame, device=device) // tokens_per_frame
    return frame[:, None] >= frame[None, :]


class PatchPredictor(nn.Module):
    """ViT over (B, T, P, dim) tokens with a frame-block-causal mask -> (B, T, P, out_dim)."""

    def __init__(self, dim: int, out_dim: int, tokens_per_frame: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.tokens_per_frame, self.history = tokens_per_frame, history
        self.pos = nn.Parameter(torch.randn(1, history * tokens_per_frame, dim) * 0.02)
        self.blocks = nn.ModuleList(ViTBlock(dim, cfg.heads, head_dim=cfg.head_dim, mlp_dim=cfg.mlp_dim,
                                             dropout=cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, out_dim)
        self.register_buffer("mask", frame_block_causal_mask(history, tokens_per_frame), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, t, p, _ = x.shape
        if t > self.history:
            raise ValueError(f"predictor context {t} exceeds its trained maximum {self.history}")
        n = t * p
        x = x.flatten(1, 2) + self.pos[:, :n]
        mask = self.mask[:n, :n]
        for blk in self.blocks:
            x = blk(x, mask=mask)
        return self.head(self.norm(x)).view(b, t, p, -1)


@register_agent("dinowm")
class DinoWM(nn.Module):
    """DINO-WM-style: frozen patch-token encoder (DINOv2 or self-pretrained), predictor over all patch tokens."""

    kind = "world_model"
    config_class = DinoWMConfig
    presets = PRESETS
    display_name, colour, in_grid, order = "DINO-WM", "C2", True, 2
    loss_terms = ("pred_loss",)
    check_collapse = False  # the encoder is frozen

    def __init__(self, config: DinoWMConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config, self.image_size, self.action_dim = config, image_size, action_dim
        self.encoder = PatchViT(config.encoder)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        d, p = config.encoder.width, self.encoder.num_patches
        self.action_encoder = nn.Linear(action_dim, config.action_embed_dim)
        self.predictor = PatchPredictor(d + config.action_embed_dim, d, p, config.history, config.predictor)

    # ------------------------------------------------------------------ world-model interface
    @property
    def encoder_kind(self) -> str:
        return "dinov2" if self.config.encoder_weights else "self-pretrained"

    @property
    def history(self) -> int:
        return self.config.history

    @property
    def embed_dim(self) -> int:
        return self.config.encoder.width

    @property
    def tokens_per_frame(self) -> int:
        return self.encoder.num_patches

    @property
    def encoder_tokens_per_frame(self) -> int:
        return self.encoder.num_patches + 1

    def train(self, mode: bool = True) -> DinoWM:
        super().train(mode)
        self.encoder.eval()  # frozen: always in inference mode
        return self

    def encode(self, frames: Tensor) -> Tensor:
        """Frames (B, T, 3, H, W) -> patch tokens (B, T, P, D), without gradient (the encoder is frozen)."""
        b, t = frames.shape[:2]
        with torch.no_grad():
            tokens = self.encoder(preprocess(frames.flatten(0, 1), self.config.encoder.input_size))[:, 1:]
        return tokens.reshape(b, t, self.tokens_per_frame, -1)

    def predict(self, embeddings: Tensor, actions: Tensor) -> Tensor:
        """Next-frame patch tokens for every frame: (B, T, P, D), (B, T, A) -> (B, T, P, D)."""
        a = self.action_encoder(actions)[:, :, None].expand(-1, -1, embeddings.shape[2], -1)
        return self.predictor(torch.cat([embeddings, a.to(embeddings.dtype)], -1))

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        """(B, h, P, D) history and (B, h - 1 + H, A) action blocks -> (B, H, P, D) predicted frames."""
        h = history.shape[1]
        steps = actions.shape[1] - (h - 1)
        if steps < 1:
            raise ValueError(f"rollout needs h - 1 + H action blocks with H >= 1; got {actions.shape[1]} for h={h}")
        embs, outputs = history, []
        for _ in range(steps):
            n = embs.shape[1]
            lo = max(0, n - self.config.history)
            nxt = self.predict(embs[:, lo:n], actions[:, lo:n])[:, -1:]
            outputs.append(nxt)
            embs = torch.cat([embs, nxt.to(embs.dtype)], 1)
        return torch.cat(outputs, 1)

    def planning_cost(self, predicted: Tensor, goal: Tensor) -> Tensor:
        """Mean squared error over all patches and channels: (N, P, D), (N, P, D) -> (N,)."""
        return (predicted.float() - goal.float()).pow(2).flatten(1).mean(-1)

    # ----------------------------------------------------------------------------- training
    def prepare(self, train_set: ClipDataset, device: torch.device, seed: int, progress: bool = True) -> None:
        """Load DINOv2 weights, or pre-train the encoder on the training frames; then freeze it."""
        if self.config.encoder_weights:
            load_dinov2_weights(self.encoder, self.config.encoder_weights)
        else:
            def sample(gen: torch.Generator, n: int) -> Tensor:
                clips = torch.randint(len(train_set), (n,), generator=gen).tolist()
                frame = torch.randint(train_set.history + 1, (n,), generator=gen).tolist()
                return torch.stack([train_set[c].frames[f] for c, f in zip(clips, frame)])

            pc = self.config.pretrain
            pretrain_masked(self.encoder, sample, pc.steps, pc.batch_size, pc.lr, pc.mask_ratio, seed, device, progress)
        self.encoder.requires_grad_(False)
        self.encoder.eval()

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        """MSE between predicted and (frozen) next-frame patch tokens: frames (B, h+1, ...), actions (B, h, A)."""
        z = self.encode(frames)
        pred = self.predict(z[:, :-1], actions)
        pred_loss = F.mse_loss(pred.float(), z[:, 1:].float())
        return LossTerms(pred_loss, {"pred_loss": pred_loss}, z)

    forward = loss
