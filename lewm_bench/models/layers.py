"""Shared building blocks of the world models, in plain PyTorch (no timm / torchvision).

ViT and CNN frame encoders, the BatchNorm projector, the action-block embedder, and the
AdaLN-zero action-conditioned transformer block with its causal predictor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def frames_to_float(frames: Tensor) -> Tensor:
    """uint8 frames (..., 3, H, W) in [0, 255] -> float in [-1, 1]."""
    return frames.float().div(127.5).sub(1.0) if frames.dtype == torch.uint8 else frames


KV = tuple[Tensor, Tensor]
"""Keys and values (B, heads, tokens, head_dim) of one attention layer: a key/value cache entry."""


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class Attention(nn.Module):
    """Multi-head self-attention with ``heads * head_dim`` inner width (may differ from ``dim``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, causal: bool = False, mask: Tensor | None = None, past: KV | None = None,
                keep: bool = False) -> Tensor | tuple[Tensor, KV]:
        """``causal``: token i attends to tokens <= i; ``mask``: boolean (N, N), True where attention is allowed.

        A key/value cache for autoregressive rollouts: ``past`` holds the keys and values (B, heads, n, d)
        of earlier tokens, and ``x`` only the new ones, which attend to every earlier token and to each
        other (one new token for a token-causal model; one new frame's tokens for a frame-causal one).
        ``keep`` also returns the keys and values of all tokens so far, for the next call.

        A single token without a past attends only to itself: the softmax over one key is 1 and the
        output is its value, so neither its query nor the attention is computed (outside training
        with attention dropout, where the one weight could be dropped).
        """
        b, n, _ = x.shape
        inner = self.heads * self.head_dim
        if past is not None and causal and n > 1:
            raise ValueError("with a key/value cache a token-causal attention takes one new token at a time")
        if n == 1 and past is None and not (self.training and self.dropout > 0):
            bias = None if self.qkv.bias is None else self.qkv.bias[inner:]
            k, v = F.linear(x, self.qkv.weight[inner:], bias).view(b, 1, 2, self.heads, self.head_dim).permute(
                2, 0, 3, 1, 4)
            out = v
        else:
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, h, N, d)
            if past is not None:
                k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask if past is None else None,
                                                 is_causal=causal and past is None,
                                                 dropout_p=self.dropout if self.training else 0.0)
        y = self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, -1)))
        return (y, (k, v)) if keep else y


class ViTBlock(nn.Module):
    """Pre-norm transformer block (attention width ``heads * head_dim``, default ``dim``)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, head_dim: int | None = None,
                 mlp_dim: int | None = None, dropout: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, head_dim or dim // heads, dropout=dropout)
        self.mlp = Mlp(dim, mlp_dim or int(dim * mlp_ratio), dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask=mask)
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """ViT returning the final-layer CLS token (after the final LayerNorm): (B, 3, H, W) -> (B, width).

    Built and initialised like the reference's Hugging Face ``ViTModel`` (``ViTConfig`` defaults):
    LayerNorm eps 1e-12; linear and conv weights, CLS token and positional embedding drawn from a
    (truncated) normal of std 0.02, biases zero.
    """

    def __init__(self, image_size: int, patch_size: int, width: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.num_patches = (image_size // patch_size) ** 2
        self.patch = nn.Conv2d(3, width, patch_size, patch_size)
        self.cls = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, 1, width), std=0.02))
        self.pos = nn.Parameter(nn.init.trunc_normal_(torch.empty(1, self.num_patches + 1, width), std=0.02))
        self.blocks = nn.ModuleList(ViTBlock(width, heads, mlp_ratio, eps=1e-12) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-12)
        self.out_dim = width
        init_linear_(self)

    @property
    def tokens_per_frame(self) -> int:
        return self.num_patches + 1

    def forward(self, x: Tensor) -> Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)  # (B, P, W)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class CNNEncoder(nn.Module):
    """Stride-2 conv stack (conv, GroupNorm, GELU per layer), flattened and mapped to ``width``."""

    def __init__(self, image_size: int, channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.GroupNorm(min(8, c), c), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for {len(channels)} stride-2 layers")
        self.fc = nn.Linear(c_in * side * side, width)
        self.out_dim = width
        self.tokens_per_frame = 1
        init_linear_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x).flatten(1))


class Projector(nn.Sequential):
    """Linear -> BatchNorm1d -> GELU -> Linear, on (N, D) or (B, T, D) inputs."""

    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Linear(hidden, out or dim))

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(*shape[:-1], -1)


class ActionEmbedder(nn.Module):
    """Action block (B, T, A) -> per-step linear to ``smooth_dim`` -> MLP with SiLU -> (B, T, dim)."""

    def __init__(self, action_dim: int, dim: int, smooth_dim: int = 10, hidden: int = 768) -> None:
        super().__init__()
        self.step = nn.Linear(action_dim, smooth_dim)
        self.mlp = nn.Sequential(nn.Linear(smooth_dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, actions: Tensor) -> Tensor:
        return self.mlp(self.step(actions))


class AdaLNZeroBlock(nn.Module):
    """Transformer block modulated per token by a condition (DiT's AdaLN-zero).

    The condition produces shift, scale and gate for the attention and MLP branches through a
    zero-initialised linear layer, so every block starts as the identity. As in the reference
    predictor, each branch then applies its own affine LayerNorm (eps 1e-5) to the modulated input
    before the attention or the MLP: norm -> modulate -> LayerNorm -> attention / MLP -> gate.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn_norm, self.mlp_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, qkv_bias=False, dropout=dropout)
        self.mlp = Mlp(dim, mlp_dim, dropout)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, cond: Tensor, causal: bool = True, past: KV | None = None,
                keep: bool = False) -> Tensor | tuple[Tensor, KV]:
        """``past`` / ``keep``: the attention's key/value cache (see :meth:`Attention.forward`)."""
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(cond).chunk(6, dim=-1)
        attended = self.attn(self.attn_norm(self.norm1(x) * (1 + scale_a) + shift_a), causal=causal, past=past,
                             keep=keep)
        attended, kv = attended if keep else (attended, None)
        x = x + gate_a * attended
        x = x + gate_m * self.mlp(self.mlp_norm(self.norm2(x) * (1 + scale_m) + shift_m))
        return (x, kv) if keep else x


class CausalPredictor(nn.Module):
    """Causal transformer over one token per frame, conditioned per token: (B, T, D), (B, T, D) -> (B, T, D).

    As in the reference: positional embedding drawn from a standard normal (std 1), PyTorch's default
    init elsewhere (apart from the zero AdaLN modulation).
    """

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int, dropout: float,
                 max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.pos = nn.Parameter(torch.randn(1, max_len, dim))
        self.blocks = nn.ModuleList(AdaLNZeroBlock(dim, heads, head_dim, mlp_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)  # eps 1e-5, as the reference's

    def forward(self, x: Tensor, cond: Tensor, past: list[KV] | None = None,
                keep: bool = False) -> Tensor | tuple[Tensor, list[KV]]:
        """Outputs for the tokens ``x``; with ``past`` (per block, from an earlier call with ``keep``) ``x`` is the
        one token that follows them, at the next position. ``keep`` also returns the cache including ``x``."""
        offset = 0 if past is None else past[0][0].shape[2]
        t = offset + x.shape[1]
        if t > self.max_len:
            raise ValueError(f"predictor context {t} exceeds its trained maximum {self.max_len}")
        x = x + self.pos[:, offset:t]
        kept: list[KV] = []
        for i, blk in enumerate(self.blocks):
            x = blk(x, cond, causal=True, past=None if past is None else past[i], keep=keep)
            if keep:
                x, kv = x
                kept.append(kv)
        return (self.norm(x), kept) if keep else self.norm(x)


def windowed_rollout(history: Tensor, steps: int, window: int, kv_cache: bool,
                     step: Callable[[slice, Tensor, list[KV] | None, bool], tuple[Tensor, list[KV] | None]]) -> Tensor:
    """Autoregressive prediction of ``steps`` frames after ``history`` (B, h, ...) -> (B, steps, ...).

    ``step(span, embeddings, past, keep)`` runs the predictor on the frames ``embeddings[:, span]`` (the
    conditioning of the same positions is the caller's) and returns the newest frame's prediction (B, 1, ...)
    and, with ``keep``, the key/value cache. The predictor sees at most the last ``window`` frames. While that
    window still grows from the first frame (and ``kv_cache``), the earlier frames' keys and values do not change
    (causal attention, fixed positions), so only the newest frame goes through the predictor; once it slides,
    every position changes and the window is recomputed.
    """
    embs, outputs, cache = history, [], None
    for _ in range(steps):
        n = embs.shape[1]
        if kv_cache and n <= window:
            span = slice(0, n) if cache is None else slice(n - 1, n)
            nxt, cache = step(span, embs[:, span], cache, True)
        else:
            span = slice(max(0, n - window), n)
            nxt, _ = step(span, embs[:, span], None, False)
        outputs.append(nxt)
        embs = torch.cat([embs, nxt.to(embs.dtype)], 1)
    return torch.cat(outputs, 1)


def count_parameters(module: nn.Module, trainable: bool | None = None) -> int:
    """Number of parameters (all, only trainable, or only frozen)."""
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def init_linear_(module: nn.Module) -> None:
    """Truncated-normal init for linear and conv weights that are not already zero-initialised."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.abs().sum() > 0:
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


__all__ = ["KV", "ActionEmbedder", "AdaLNZeroBlock", "Attention", "CNNEncoder", "CausalPredictor", "Mlp", "Projector",
           "ViTEncoder", "count_parameters", "frames_to_float", "init_linear_", "windowed_rollout"]
