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


DROPOUT_BITS = 16
"""On the CPU, :func:`dropout` decides each element from this many random bits: an ``int16`` field of a 64-bit word
(a fact of the implementation, not a setting)."""


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1 / (1 - p).

    On a GPU this is ``F.dropout``. On the CPU, PyTorch draws one random double per element from its generator
    (``bernoulli_``, a serial loop: ~4.4 ns an element on an AVX-512 EPYC), which took a third of a cpu-profile
    DINO-WM-style training step (``results/bench/dropout-avx512.txt``). Here each element is decided by 16 bits of
    64-bit words drawn from the same generator (torch's default, so seeding and resuming work as before), four
    elements a draw: ``p`` is rounded to a multiple of 2^-16 (0.1 -> 0.1000061) and the kept elements are scaled by
    the inverse of that rounded keep probability, so the layer stays unbiased. Not the same masks as ``F.dropout``
    for the same seed."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)
    levels = 1 << DROPOUT_BITS
    dropped = round(p * levels)  # elements whose 16-bit field (as unsigned) is below this are zeroed
    per_word = 64 // DROPOUT_BITS
    words = torch.empty(-(-x.numel() // per_word), dtype=torch.int64).random_(-(2 ** 63), None)  # 64 random bits
    fields = words.view(torch.int16)[:x.numel()].view(x.shape)  # signed: -32768 is the unsigned 0
    keep = fields >= dropped - levels // 2
    return x * keep.to(x.dtype) * (levels / (levels - dropped))


class Dropout(nn.Dropout):
    """``nn.Dropout`` through :func:`dropout` (its fast CPU masks); the same module otherwise."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)


class Mlp(nn.Sequential):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, dim), Dropout(dropout))


EXPLICIT_ATTENTION_PATHS: tuple[tuple[str, torch.dtype | None, int | None], ...] = (
    ("cuda", None, 8), ("cpu", torch.bfloat16, None))
"""(device type, dtype or None for any, most keys or None for any) where attention is computed as two batched
products and a softmax (:func:`_explicit_attention`) instead of ``scaled_dot_product_attention``.

On a GPU over at most 8 keys: a planning rollout attends over 1-4 frame tokens for each of hundreds of candidates x
heads, where the fused kernels (cuDNN/flash: 54 us a call on an H200, a third of a LeWM planning call's kernel time,
``results/bench/gpu-h200``) are almost all tile padding. On the CPU in bf16 over any number of keys: PyTorch's fused
bf16 kernel costs 2-5x the explicit products at LeWM's rollout sizes (300 rows x 16 heads x 64, 1-3 queries over 2-3
keys: 0.8-1.4 ms against 1.9-4.1 ms on an AVX-512 EPYC with bf16, ``results/bench/planning-attention-avx512.txt``) and
2-3x at DINO-WM's 16-588 keys once freed memory is reused (:mod:`lewm_bench.allocator`;
``results/bench/attention-cpu-avx512.txt``)."""


def _takes_explicit_path(q: Tensor, keys: int, dropout: float) -> bool:
    """Whether attention of ``q`` over ``keys`` keys runs as explicit products (:data:`EXPLICIT_ATTENTION_PATHS`).
    With attention dropout (training) on the CPU always, so that the weights are dropped by :func:`dropout` (PyTorch's
    CPU attention draws them through ``bernoulli_`` in its math path); on a GPU never."""
    if dropout:
        return q.device.type == "cpu"
    return any(q.device.type == device and dtype in (None, q.dtype) and (most is None or keys <= most)
               for device, dtype, most in EXPLICIT_ATTENTION_PATHS)


BROADCAST_ATTENTION_PAIRS = 16
"""Inside ``torch.compile``, explicit attention with at most this many query-key pairs per head computes its two
products as broadcast multiplications and sums in fp32, which inductor fuses with the softmax, instead of batched matrix
products. On CUDA, for 300 candidates x 16 heads, the library's batched 3 x 64 x 3 and 3 x 3 x 64 products took 18.6
and 11.4 us a call on an H200 for a few thousand multiply-adds per head: a compiled paper-size LeWM planning call went
0.0726 -> 0.0601 s (1.21x; ``results/bench/gpu-h200/README.md``, run 7). On the CPU, where the batched products of
4,800 tiny matrices are per-matrix overhead too, the compiled call went 3.4-3.8 -> 3.0-3.3 s
(``results/bench/planning-compile-cpu.txt``). Run eagerly the broadcast form was 0.97x on an H200, so it is used only
while compiling."""
BROADCAST_ATTENTION_DEVICES: tuple[str, ...] = ("cuda", "cpu")
"""Device types that take the broadcast form when compiled."""


def _broadcasts(q: Tensor, keys: int) -> bool:
    """Whether attention of ``q`` over ``keys`` keys takes the broadcast form (:data:`BROADCAST_ATTENTION_PAIRS`)."""
    return (q.device.type in BROADCAST_ATTENTION_DEVICES and q.shape[-2] * keys <= BROADCAST_ATTENTION_PAIRS
            and torch.compiler.is_compiling())


def _explicit_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, causal: bool,
                        dropout_p: float = 0.0) -> Tensor:
    """softmax(q k^T / sqrt(d)) v as two products and a softmax; ``mask`` True where allowed, ``causal`` the square
    causal mask; ``dropout_p``: attention dropout on the weights (:func:`dropout`).
    The softmax runs in fp32 (as the fused kernels accumulate), the products in the inputs' (autocast) precision,
    or all in fp32 in the broadcast form (:data:`BROADCAST_ATTENTION_PAIRS`). A mask is added to the fp32 scores as 0
    or -inf (one pass, the same numbers as filling them)."""
    nk = k.shape[-2]
    broadcast = _broadcasts(q, nk)
    if broadcast:
        scores = (q.float()[..., :, None, :] * k.float()[..., None, :, :]).sum(-1) * q.shape[-1] ** -0.5
    else:
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if causal:
        mask = torch.ones(nk, nk, dtype=torch.bool, device=q.device).tril()
    scores = scores.float()
    if mask is not None:
        scores = scores + torch.zeros(mask.shape, device=q.device).masked_fill_(~mask, float("-inf"))
    weights = dropout(scores.softmax(-1), dropout_p)
    if broadcast:
        return (weights[..., None] * v.float()[..., None, :, :]).sum(-2).to(v.dtype)
    return weights.to(v.dtype) @ v


class Attention(nn.Module):
    """Multi-head self-attention with ``heads * head_dim`` inner width (may differ from ``dim``)."""

    def __init__(self, dim: int, heads: int, head_dim: int, qkv_bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim)
        self.proj_drop = Dropout(dropout)

    def forward(self, x: Tensor, causal: bool = False, mask: Tensor | None = None, past: KV | None = None,
                keep: bool = False, queries: int | None = None) -> Tensor | tuple[Tensor, KV]:
        """Attention of the tokens ``x`` (B, n, dim).

        ``causal``: token i attends to tokens <= i. ``mask``: boolean, True where attention is allowed:
        (n, n) over the tokens ``x``, or with ``past`` the new tokens' rows over every key, (n, n_past + n).

        A key/value cache for autoregressive rollouts: ``past`` holds the keys and values (B, heads, n_past, d)
        of earlier tokens, and ``x`` only the new ones, which attend to every earlier token and to each other as
        ``causal`` / ``mask`` allow. ``keep`` also returns the keys and values of all tokens so far, for the next
        call. ``queries``: only the last ``queries`` tokens' outputs are computed, (B, queries, dim); every token's
        key and value still is (a model's last layer, where only the newest tokens' outputs are used).

        A single token without a past attends only to itself: the softmax over one key is 1 and the
        output is its value, so neither its query nor the attention is computed (outside training
        with attention dropout, where the one weight could be dropped).
        """
        b, n, _ = x.shape
        inner = self.heads * self.head_dim
        nq = n if queries is None else queries
        if not 1 <= nq <= n:
            raise ValueError(f"queries must be between 1 and the {n} tokens given; got {queries}")
        dropout = self.dropout if self.training else 0.0
        bias = self.qkv.bias
        if n == 1 and past is None and dropout == 0:
            kv = F.linear(x, self.qkv.weight[inner:], None if bias is None else bias[inner:])
            k, v = kv.view(b, 1, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            out = kv[..., inner:]  # the output is the value
            if torch.compiler.is_compiling():
                # Contiguous under torch.compile, so that the projection is one matrix product: inductor lowers the
                # batched product that strided rows trace to as a reduction loop on the CPU (about 42 GFLOP/s at the
                # paper's sizes). Not eagerly, where the copy gains nothing and the product's rounding would change.
                out = out.contiguous()
        else:
            if nq == n:
                q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, h, N, d)
            else:
                q = F.linear(x[:, n - nq:], self.qkv.weight[:inner], None if bias is None else bias[:inner])
                q = q.view(b, nq, self.heads, self.head_dim).transpose(1, 2)
                k, v = F.linear(x, self.qkv.weight[inner:], None if bias is None else bias[inner:]).view(
                    b, n, 2, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            if past is not None:
                k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            keys = k.shape[2]
            square_causal = causal and nq == keys  # no past, every query: SDPA's own causal mask
            if causal:  # the queries' rows of the causal mask over every key (the last token's: all of them)
                mask = None if square_causal or nq == 1 else torch.ones(
                    keys, keys, dtype=torch.bool, device=x.device).tril()[keys - nq:]
            elif mask is not None:
                if mask.shape != (n, keys):
                    raise ValueError(f"mask must be (new tokens, keys) = {(n, keys)}; got {tuple(mask.shape)}")
                mask = mask[n - nq:]
            if _takes_explicit_path(q, keys, dropout):
                out = _explicit_attention(q, k, v, mask, square_causal, dropout)
            else:
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=square_causal,
                                                     dropout_p=dropout)
            out = out.transpose(1, 2).reshape(b, nq, -1)
        y = self.proj_drop(self.proj(out))
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

    def forward(self, x: Tensor, cond: Tensor, causal: bool = True, past: KV | None = None, keep: bool = False,
                queries: int | None = None, modulated: bool = False) -> Tensor | tuple[Tensor, KV]:
        """``past`` / ``keep`` / ``queries``: the attention's key/value cache and trailing outputs (see
        :meth:`Attention.forward`); with ``queries`` the block returns only the last ``queries`` tokens.
        ``modulated``: ``cond`` is already this block's modulation of the conditions, (B, n, 6 * dim) (a predictor
        computes every block's at once: :meth:`CausalPredictor.modulations`)."""
        mod = cond if modulated else self.modulation(cond)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.chunk(6, dim=-1)
        attended = self.attn(self.attn_norm(self.norm1(x) * (1 + scale_a) + shift_a), causal=causal, past=past,
                             keep=keep, queries=queries)
        attended, kv = attended if keep else (attended, None)
        if queries is not None:
            tail = x.shape[1] - queries
            x, gate_a, shift_m, scale_m, gate_m = (t[:, tail:] for t in (x, gate_a, shift_m, scale_m, gate_m))
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

    def modulations(self, cond: Tensor) -> Tensor:
        """Every block's AdaLN modulation of the conditions, as one product: (B, T, D) -> (B, T, depth, 6 * D).

        One matrix product per predictor call instead of one per block: on a GPU, where a planning rollout's small
        products are launch-bound, 1.03x graphed and 1.05x compiled for a paper-size LeWM call
        (``results/bench/gpu-h200/README.md``, run 5). A rollout computes them once for all of its steps
        (:meth:`lewm_bench.models.lewm.LeWM.rollout`)."""
        weight = torch.cat([blk.modulation[1].weight for blk in self.blocks])
        bias = torch.cat([blk.modulation[1].bias for blk in self.blocks])
        return F.linear(F.silu(cond), weight, bias).unflatten(-1, (len(self.blocks), -1))

    def forward(self, x: Tensor, cond: Tensor, past: list[KV] | None = None, keep: bool = False,
                newest: bool = False, modulated: bool = False) -> Tensor | tuple[Tensor, list[KV]]:
        """Outputs for the tokens ``x``; with ``past`` (per block, from an earlier call with ``keep``) ``x`` are the
        tokens that follow them, at the next positions. ``keep`` also returns the cache including ``x``.
        ``newest``: only the last token's output, (B, 1, D) (its last block computes no other).
        ``modulated``: ``cond`` is already :meth:`modulations` of the conditions, (B, n, depth, 6 * D)."""
        offset = 0 if past is None else past[0][0].shape[2]
        t = offset + x.shape[1]
        if t > self.max_len:
            raise ValueError(f"predictor context {t} exceeds its trained maximum {self.max_len}")
        x = x + self.pos[:, offset:t]
        mods = cond if modulated else self.modulations(cond)
        kept: list[KV] = []
        for i, blk in enumerate(self.blocks):
            last = newest and i == len(self.blocks) - 1
            x = blk(x, mods[:, :, i], causal=True, past=None if past is None else past[i], keep=keep,
                    queries=1 if last else None, modulated=True)
            if keep:
                x, kv = x
                kept.append(kv)
        return (self.norm(x), kept) if keep else self.norm(x)


RolloutStep = Callable[[slice, Tensor, list[KV] | None, bool, Tensor | None], tuple[Tensor, list[KV] | None]]
"""``step(span, embeddings, past, keep, rows)`` of :func:`windowed_rollout`."""


def windowed_rollout(history: Tensor, actions: Tensor, window: int, reuse: bool, step: RolloutStep) -> Tensor:
    """Autoregressive prediction of the H frames after ``history`` (B, h, ...) -> (B, H, ...).

    ``actions`` (B, h - 1 + H, A): the h - 1 blocks taken between the history frames, then the H to roll out
    (block i follows frame i). ``step(span, embeddings, past, keep, rows)`` runs the predictor on the frames
    ``embeddings`` at the absolute frame indices ``span``, conditioned on the actions ``actions[rows][:, span]``
    (every row when ``rows`` is None), after the frames whose keys and values are ``past`` (None: the frames start
    the window); it returns the newest frame's prediction (B, 1, ...) and, with ``keep``, the key/value cache
    including these frames. The predictor sees at most the last ``window`` frames.

    With ``reuse`` (False recomputes every frame of every window: the reference of tests and benchmarks), work
    whose result is already known is not repeated; the predictions are the same up to float rounding:

    - While the window still grows from the first frame, the earlier frames' keys and values do not change
      (causal attention, fixed positions), so only the newest frame goes through the predictor. Once the window
      slides, every position changes and the window is recomputed.
    - The frames at the head of a window that are history frames followed by past actions are identical in every
      row of a run of equal rows (the candidates of one planning call share their context frames and past
      actions): they go through the predictor once per run, and their keys and values are copied to its rows
      (not inside a CUDA graph capture, where the runs cannot be looked for).
    """
    h = history.shape[1]
    steps = actions.shape[1] - (h - 1)
    if steps < 1:
        raise ValueError(f"rollout needs h - 1 + H action blocks with H >= 1; got {actions.shape[1]} for h={h}")
    capturing = history.is_cuda and torch.cuda.is_current_stream_capturing()  # a CUDA graph: no data-dependent choice
    runs = _runs_of_equal_rows(history[:, :h - 1], actions[:, :h - 1]) if reuse and h > 1 and not capturing else None
    embs, outputs, cache = history, [], None
    for _ in range(steps):
        n = embs.shape[1]
        grows = reuse and n <= window
        if grows and cache is not None:  # one new frame after the cached ones
            nxt, cache = step(slice(n - 1, n), embs[:, n - 1:], cache, True, None)
        else:
            lo = max(0, n - window)
            shared = 0 if runs is None else max(0, h - 1 - lo)  # leading history frames with past actions
            past = None
            if shared:
                firsts, run = runs
                _, head = step(slice(lo, lo + shared), embs[firsts, lo:lo + shared], None, True, firsts)
                past = [(k[run], v[run]) for k, v in head]
            nxt, kept = step(slice(lo + shared, n), embs[:, lo + shared:], past, grows, None)
            if grows:
                cache = kept
        outputs.append(nxt)
        embs = torch.cat([embs, nxt.to(embs.dtype)], 1)
    return torch.cat(outputs, 1)


def _runs_of_equal_rows(*tensors: Tensor) -> tuple[Tensor, Tensor] | None:
    """Runs of consecutive rows equal in every tensor: (first row of each run (U,), run of each row (B,)),
    or None when no two consecutive rows are equal."""
    flat = torch.cat([t.flatten(1).float() for t in tensors], 1)
    starts = torch.ones(len(flat), dtype=torch.bool, device=flat.device)
    starts[1:] = (flat[1:] != flat[:-1]).any(1)
    if bool(starts.all()):
        return None
    return starts.nonzero().squeeze(1), starts.cumsum(0) - 1


def count_parameters(module: nn.Module, trainable: bool | None = None) -> int:
    """Number of parameters (all, only trainable, or only frozen)."""
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def tensor_versions(module: nn.Module) -> tuple[tuple[int, int], ...]:
    """(address, version counter) of each of ``module``'s parameters and buffers: it changes when one is moved,
    replaced or written in place (a checkpoint loaded into the module), so what was derived from them is stale."""
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))


def init_linear_(module: nn.Module) -> None:
    """Truncated-normal init for linear and conv weights that are not already zero-initialised."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.abs().sum() > 0:
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


__all__ = ["KV", "ActionEmbedder", "AdaLNZeroBlock", "Attention", "CNNEncoder", "CausalPredictor", "Mlp", "Projector",
           "ViTEncoder", "count_parameters", "frames_to_float", "init_linear_", "tensor_versions", "windowed_rollout",
           "RolloutStep"]
