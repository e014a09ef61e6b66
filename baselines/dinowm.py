"""DINO-WM-style world model (SPEC §5.4): frozen patch-token encoder, predictor over all patches.

Each frame is encoded by a frozen ViT into P patch tokens (DINOv2 ViT-S/14 on 224 px frames resized
to 196 px, as DINO-WM does: 196 tokens of width 384; CLS dropped). The action block is embedded to 10
dimensions (a linear map, DINO-WM's kernel-1 Conv1d), tiled over the frame's patches and concatenated
to every token (width 394). A ViT predictor as DINO-WM's and stable-worldmodel's ``CausalPredictor``
(learned positional embedding over history x patches drawn from a standard normal; pre-norm blocks
with a bias-free qkv projection; a final LayerNorm; no output head: it predicts the full 394-wide
token and the action slots are replaced by the next action's embedding, i.e. dropped, before the next
step) with a frame-block-causal mask (a token sees every token of its own and earlier frames)
predicts the next frame's patch tokens; loss = MSE over the visual slots against the (frozen, hence
detached) next-frame tokens. Planning cost: mean squared error over all patches of the last
predicted frame against the goal's patches (stable-worldmodel's ``goal_mse_pixels``).

Training recipe (``train_presets``): stable-worldmodel 0.1.1's ``prejepa.yaml`` -- AdamW, batch 32,
lr 5e-4, weight decay 0, gradient clipping 1.0, 10 epochs, no warm-up and a cosine decay to 0 stepped
per optimiser step (stable-pretraining's default ``CosineAnnealingLR`` when no scheduler is given).

The encoder is either real DINOv2 (``encoder_weights``: a local official-layout checkpoint) or the
same architecture pre-trained by the suite on the env's frames (see :mod:`lewm_bench.baselines.dinov2`);
``encoder_kind`` (``dinov2`` | ``self-pretrained``) is recorded in every result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lewm_bench.baselines.dinov2 import (
    FrozenFeatureMemo,
    PatchEncoderConfig,
    PatchViT,
    load_dinov2_weights,
    preprocess,
    pretrain_masked_cached,
)
from lewm_bench.models.layers import KV, Attention, Mlp, windowed_rollout
from lewm_bench.models.lewm import PredictorConfig
from lewm_bench.registry import LossTerms, register_agent
from lewm_bench.training.config import TrainConfig, bf16_autocast, check_bf16_mode

if TYPE_CHECKING:
    from lewm_bench.data.clips import ClipDataset


@dataclass(frozen=True)
class EncoderPretrainConfig:
    """Masked-patch autoencoding of the frozen encoder when no DINOv2 weights are given."""

    steps: int = 20_000
    batch_size: int = 128
    lr: float = 5e-4
    mask_ratio: float = 0.5
    bf16: str = "auto"
    """bf16 autocast of the pre-training's forward passes, as :attr:`TrainConfig.bf16` (one of ``BF16_MODES``); on the
    2-core AVX-512 machine a cpu-profile step takes 43 ms in bf16 against 92 ms in fp32."""

    def __post_init__(self) -> None:
        check_bf16_mode(self.bf16)


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


TRAIN_PRESETS: MappingProxyType[str, TrainConfig] = MappingProxyType({
    # stable-worldmodel 0.1.1 scripts/train/config/prejepa.yaml (DINO-WM): batch 32, AdamW lr 5e-4, weight
    # decay 0, gradient clipping 1.0, 10 epochs; no scheduler given, so stable-pretraining's default cosine
    # annealing to 0 stepped per optimiser step, without warm-up. (DINO-WM's own repo: 100 epochs, same lr.)
    "paper": TrainConfig(epochs=10, batch_size=32, lr=5e-4, weight_decay=0.0, warmup_fraction=0.0, grad_clip=1.0),
    # The cpu profile's 7 epochs, with DINO-WM's batch, lr and weight decay; 800 steps of 32 clips see as many
    # clips per epoch as the profile's 200 steps of 128.
    "cpu": TrainConfig(epochs=7, steps_per_epoch=800, batch_size=32, lr=5e-4, weight_decay=0.0,
                       warmup_fraction=0.0, grad_clip=1.0, bf16="auto"),
    "smoke": TrainConfig(epochs=2, steps_per_epoch=4, batch_size=8, lr=5e-4, weight_decay=0.0,
                         warmup_fraction=0.0, grad_clip=1.0, eval_clips=32),
})
"""DINO-WM's own optimisation recipe per profile (not LeWM's batch 128, lr 5e-5, weight decay 1e-3)."""


def frame_block_causal_mask(frames: int, tokens_per_frame: int, device: torch.device | None = None) -> Tensor:
    """Boolean (frames * P, frames * P): True where the query's frame is at or after the key's frame."""
    frame = torch.arange(frames * tokens_per_frame, device=device) // tokens_per_frame
    return frame[:, None] >= frame[None, :]


class PredictorBlock(nn.Module):
    """DINO-WM's pre-norm block: LayerNorm -> attention (qkv without bias) and LayerNorm -> MLP, each residual."""

    def __init__(self, dim: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)  # eps 1e-5 as the reference's
        self.attn = Attention(dim, cfg.heads, cfg.head_dim, qkv_bias=False, dropout=cfg.dropout)
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, cfg.mlp_dim, cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None, past: KV | None = None, keep: bool = False,
                queries: int | None = None) -> Tensor | tuple[Tensor, KV]:
        """``past`` / ``keep`` / ``queries``: the attention's key/value cache and trailing outputs
        (:meth:`lewm_bench.models.layers.Attention.forward`); with ``queries`` only the last ``queries`` tokens."""
        attended = self.attn(self.attn_norm(x), mask=mask, past=past, keep=keep, queries=queries)
        attended, kv = attended if keep else (attended, None)
        x = x + attended if queries is None else x[:, x.shape[1] - queries:] + attended
        x = x + self.mlp(self.mlp_norm(x))
        return (x, kv) if keep else x


class PatchPredictor(nn.Module):
    """ViT over (B, T, P, dim) tokens with a frame-block-causal mask -> (B, T, P, dim) (no output head).

    As the reference: positional embedding (1, history * P, dim) from a standard normal, PyTorch's
    default init elsewhere, a final LayerNorm.
    """

    def __init__(self, dim: int, tokens_per_frame: int, history: int, cfg: PredictorConfig) -> None:
        super().__init__()
        self.tokens_per_frame, self.history = tokens_per_frame, history
        self.pos = nn.Parameter(torch.randn(1, history * tokens_per_frame, dim))
        self.blocks = nn.ModuleList(PredictorBlock(dim, cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("mask", frame_block_causal_mask(history, tokens_per_frame), persistent=False)

    def forward(self, x: Tensor, past: list[KV] | None = None, keep: bool = False,
                newest: bool = False) -> Tensor | tuple[Tensor, list[KV]]:
        """Outputs for the frames ``x``; with ``past`` (per block, from an earlier call with ``keep``) ``x`` are the
        frames that follow them, whose tokens attend to every earlier token and to each other as the
        frame-block-causal mask allows. ``keep`` also returns the cache including ``x``. ``newest``: only the
        last frame's outputs, (B, 1, P, dim) (its last block computes no other)."""
        b, t, p, _ = x.shape
        offset = 0 if past is None else past[0][0].shape[2]
        n = offset + t * p
        if n > self.history * p:
            raise ValueError(f"predictor context {n // p} exceeds its trained maximum {self.history}")
        x = x.flatten(1, 2) + self.pos[:, offset:n]
        mask = None if t == 1 else self.mask[offset:n, :n]  # one new frame attends to every token so far
        kept: list[KV] = []
        for i, blk in enumerate(self.blocks):
            last = newest and i == len(self.blocks) - 1
            x = blk(x, mask=mask, past=None if past is None else past[i], keep=keep, queries=p if last else None)
            if keep:
                x, kv = x
                kept.append(kv)
        out = self.norm(x).view(b, 1 if newest else t, p, -1)
        return (out, kept) if keep else out


@register_agent("dinowm")
class DinoWM(nn.Module):
    """DINO-WM-style: frozen patch-token encoder (DINOv2 or self-pretrained), predictor over all patch tokens."""

    kind = "world_model"
    config_class = DinoWMConfig
    presets = PRESETS
    train_presets = TRAIN_PRESETS
    display_name, colour, in_grid, order = "DINO-WM", "C2", True, 2
    loss_terms = ("pred_loss",)
    check_collapse = False  # the encoder is frozen
    kv_cache = True
    """Rollouts reuse known work: earlier frames' keys and values, shared context frames (see LeWM.kv_cache)."""
    feature_memo_bytes = 2**29
    """While training on the CPU, when the frozen encoder's outputs for every frame of the training split fit in this
    many bytes, each frame's output is kept instead of being computed again for every clip it appears in: the same
    numbers (:class:`FrozenFeatureMemo`; set up by :meth:`prepare`, so not after a resume). At the cpu profile's sizes a
    frame's output is 8 KiB: Cube's 29k training frames fit (training 1.22x faster); PushT's 172k do not (a memo of
    part of them bought 1.00-1.06x for 0.9-1.5 GiB more memory: ``results/bench/feature-memo-avx512.txt``)."""

    def __init__(self, config: DinoWMConfig, image_size: int, action_dim: int) -> None:
        super().__init__()
        self.config, self.image_size, self.action_dim = config, image_size, action_dim
        self.encoder = PatchViT(config.encoder)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.action_encoder = nn.Linear(action_dim, config.action_embed_dim)  # DINO-WM's kernel-1 Conv1d
        self.predictor = PatchPredictor(self.token_width(config) + config.action_embed_dim, self.encoder.num_patches,
                                        config.history, config.predictor)
        self.feature_memo: FrozenFeatureMemo | None = None  # see feature_memo_bytes

    @staticmethod
    def token_width(config: DinoWMConfig) -> int:
        """Width of a frame's token before the action slots are appended (the encoder's)."""
        return config.encoder.width

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
        """Frames (B, T, 3, H, W) -> patch tokens (B, T, P, D), without gradient (the encoder is frozen); while
        training, through :attr:`feature_memo`."""
        b, t = frames.shape[:2]
        with torch.no_grad():
            memo = self.feature_memo if self.training else None
            tokens = (memo(self.encoder, frames.flatten(0, 1), self._encode_unseen) if memo is not None
                      else self._encode_frames(frames.flatten(0, 1)))
        return tokens.reshape(b, t, self.tokens_per_frame, -1)

    def _encode_frames(self, frames: Tensor) -> Tensor:
        return self.encoder(preprocess(frames, self.config.encoder.input_size))[:, 1:]

    def _encode_unseen(self, frames: Tensor) -> Tensor:
        """:meth:`_encode_frames` of the memo's unseen frames, in a batch padded (with the first frame) to a power of
        two. Their number varies from call to call, and every batch size costs oneDNN kernels and buffers of its own:
        the first 400 steps of a Cube training grew the process by 650 MiB for 184 MiB of kept outputs, 238 padded.
        The padding changes no output (a frame's does not depend on its batch on the CPU)."""
        n = len(frames)
        padded = torch.cat([frames, frames[:1].expand((1 << (n - 1).bit_length()) - n, -1, -1, -1)])
        return self._encode_frames(padded)[:n]

    def predict(self, embeddings: Tensor, actions: Tensor, past: list[KV] | None = None, keep: bool = False,
                newest: bool = False) -> Tensor | tuple[Tensor, list[KV]]:
        """Next-frame patch tokens for every frame: (B, T, P, D), (B, T, A) -> (B, T, P, D).

        The predictor's action slots are dropped (the reference replaces them by the next action's
        embedding before the next step and leaves them out of the loss and the planning cost).
        ``past`` / ``keep`` / ``newest``: the predictor's key/value cache and newest frame only
        (:meth:`PatchPredictor.forward`).
        """
        a = self.action_encoder(actions)[:, :, None].expand(-1, -1, embeddings.shape[2], -1)
        out = self.predictor(torch.cat([embeddings, a.to(embeddings.dtype)], -1), past=past, keep=keep, newest=newest)
        out, kept = out if keep else (out, None)
        out = out[..., :embeddings.shape[-1]]
        return (out, kept) if keep else out

    def rollout(self, history: Tensor, actions: Tensor) -> Tensor:
        """(B, h, P, D) history and (B, h - 1 + H, A) action blocks -> (B, H, P, D) predicted frames."""
        def step(span: slice, embs: Tensor, past: list[KV] | None, keep: bool,
                 rows: Tensor | None) -> tuple[Tensor, list[KV] | None]:
            acts = actions[:, span] if rows is None else actions[rows, span]
            out = self.predict(embs, acts, past=past, keep=keep, newest=True)
            return out if keep else (out, None)

        return windowed_rollout(history, actions, self.config.history, self.kv_cache, step)

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
            identity = {"dataset": train_set.meta.identity, "episodes": [int(e) for e in train_set.episodes],
                        "history": train_set.history, "frameskip": train_set.frameskip, "clips": len(train_set),
                        "encoder": asdict(self.config.encoder), "image_size": self.image_size}
            folder = Path(train_set.path).parent / "encoders"
            pretrain_masked_cached(self.encoder, sample, pc.steps, pc.batch_size, pc.lr, pc.mask_ratio, seed, device,
                                   folder, identity, progress, bf16_autocast(pc.bf16, device))
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        outputs = len(train_set.frame_states) * self.encoder.num_patches * self.config.encoder.width * 4  # fp32
        cpu_fits = device.type == "cpu" and outputs <= self.feature_memo_bytes
        self.feature_memo = FrozenFeatureMemo(outputs) if cpu_fits else None

    def loss(self, frames: Tensor, actions: Tensor, generator: torch.Generator | None = None) -> LossTerms:
        """MSE between predicted and (frozen) next-frame patch tokens: frames (B, h+1, ...), actions (B, h, A)."""
        z = self.encode(frames)
        pred = self.predict(z[:, :-1], actions)
        pred_loss = F.mse_loss(pred.float(), z[:, 1:].float())
        return LossTerms(pred_loss, {"pred_loss": pred_loss}, z)

    forward = loss
