"""A frozen patch-token ViT in the official DINOv2 state-dict layout, and its two sources of weights.

1. Real DINOv2 weights (ViT-S/14: width 384, 12 layers, 6 heads, LayerScale, positional table for
   a 37 x 37 grid) from a local file in the official torch hub layout (``cls_token``, ``pos_embed``,
   ``mask_token``, ``patch_embed.proj.*``, ``blocks.N.{norm1,attn.qkv,attn.proj,ls1,norm2,mlp.fc1,
   mlp.fc2,ls2}.*``, ``norm.*``) or in the Hugging Face ``facebook/dinov2-small`` layout
   (``model.safetensors`` / ``pytorch_model.bin``; converted on load): :func:`load_dinov2_weights`.
   Nothing is downloaded.
2. Without such a file, the suite pre-trains the same architecture (at the profile's size) on the
   environment's training frames by **masked-patch autoencoding**: half of the patch tokens are
   replaced by ``mask_token`` and a linear decoder reconstructs every patch's pixels from the final
   tokens (:func:`pretrain_masked`). The encoder is frozen afterwards.

The positional table keeps its stored grid and is resized (bicubic) to the input's patch grid,
as DINOv2 does, so official checkpoints load without conversion.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lewm_bench.errors import LewmBenchError
from lewm_bench.identity import content_hash, tensor_digest
from lewm_bench.io import atomic_path
from lewm_bench.models.layers import Attention, tensor_versions
from lewm_bench.training.checkpoint import state_mismatches

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PatchEncoderConfig:
    """Frozen patch encoder; defaults are DINOv2 ViT-S/14 on 196 x 196 inputs (196 patch tokens)."""

    input_size: int = 196
    """Frames are resized to this side before patching."""
    patch_size: int = 14
    width: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: float = 4.0
    pos_grid: int = 37
    """Side of the stored positional grid (DINOv2: 518 / 14 = 37); resized to ``input_size / patch_size``."""

    @property
    def grid(self) -> int:
        return self.input_size // self.patch_size

    def __post_init__(self) -> None:
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} must be a multiple of patch_size {self.patch_size}")


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, patch, patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class _LayerScale(nn.Module):
    def __init__(self, width: int, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((width,), init))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class _Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads, width // heads)
        self.ls1, self.ls2 = _LayerScale(width), _LayerScale(width)
        self.mlp = _Mlp(width, int(width * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchViT(nn.Module):
    """ViT with DINOv2's parameter names: normalised frames (N, 3, S, S) -> final-norm tokens (N, 1 + P, D)."""

    def __init__(self, config: PatchEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.patch_embed = _PatchEmbed(config.patch_size, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + config.pos_grid ** 2, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        self.blocks = nn.ModuleList(_Block(d, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self._resized: tuple[tuple, Tensor] | None = None  # (weights version, device, dtype) -> resized table
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    @property
    def num_patches(self) -> int:
        return self.config.grid ** 2

    def positions(self) -> Tensor:
        """Positional embeddings (1, 1 + P, D) for the input grid.

        Once the encoder is frozen the resized table is computed once and reused (until the weights
        change, e.g. by ``load_state_dict``), not on every encoder call.
        """
        g, stored = self.config.grid, self.config.pos_grid
        if g == stored:
            return self.pos_embed
        key = (self.pos_embed._version, self.pos_embed.device, self.pos_embed.dtype)
        if not self.pos_embed.requires_grad and self._resized is not None and self._resized[0] == key:
            return self._resized[1]
        patches = self.pos_embed[:, 1:].reshape(1, stored, stored, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches.float(), size=(g, g), mode="bicubic", align_corners=False)
        table = torch.cat([self.pos_embed[:, :1], patches.flatten(2).transpose(1, 2).to(self.pos_embed.dtype)], 1)
        self._resized = None if self.pos_embed.requires_grad else (key, table)
        return table

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask`` (N, P) boolean: patches replaced by ``mask_token`` (masked-patch pre-training)."""
        tokens = self.patch_embed(x)
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        x = torch.cat([self.cls_token.expand(len(tokens), -1, -1), tokens], 1) + self.positions()
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def preprocess(frames: Tensor, size: int) -> Tensor:
    """uint8 frames (N, 3, H, W) -> resized to ``size``, ImageNet-normalised floats (DINOv2's input)."""
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else (frames.float() + 1.0) / 2.0
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean, std = _imagenet_stats(x.device)
    return (x - mean) / std


@functools.cache
def _imagenet_stats(device: torch.device) -> tuple[Tensor, Tensor]:
    """ImageNet's channel mean and std (1, 3, 1, 1) on ``device``, made once per device: no copy from the host at
    each call, so that an encoder using :func:`preprocess` can be captured in a CUDA graph (the planner's)."""
    return (torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1),
            torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1))


class FrozenFeatureMemo:
    """A frozen encoder's output per distinct frame, kept while a model trains on a fixed set of frames.

    Training encodes each clip's frames at every step although the encoder never changes, and every frame of a
    dataset comes back in many clips and epochs (a cpu-profile DINO-WM-style run encodes 717k frames of a Cube training
    split of 29k). A call encodes only the frames it has not seen (known by a 128-bit digest of their bytes)
    and keeps their outputs, up to ``budget_bytes`` of them; once the budget is used, unseen frames are encoded
    at every call. The table is emptied when the encoder's weights or the autocast precision change.

    Exact on the CPU: there a frame's encoding does not depend on the other frames of its batch (every matrix
    product reduces a row alike whatever the number of rows; tested), so the outputs are bit for bit those of
    encoding the whole batch. uint8 frames on the CPU only (elsewhere :meth:`__call__` just encodes).
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._rows: dict[bytes, int] = {}
        self._table: Tensor | None = None
        self._state: tuple = ()

    def __len__(self) -> int:
        """Frames whose output is kept."""
        return len(self._rows)

    def __call__(self, encoder: nn.Module, frames: Tensor, encode: Callable[[Tensor], Tensor]) -> Tensor:
        """``encode(frames)`` for frames (N, 3, H, W) (``encode`` must run ``encoder`` on each frame alone)."""
        if frames.device.type != "cpu" or frames.dtype != torch.uint8:
            return encode(frames)
        autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        state = (autocast, tensor_versions(encoder))
        if state != self._state:
            self._rows, self._table, self._state = {}, None, state
        keys = [hashlib.blake2b(frame, digest_size=16).digest() for frame in frames.contiguous().numpy()]
        unseen: dict[bytes, int] = {}  # digest -> its first frame in this call
        for i, key in enumerate(keys):
            if key not in self._rows:
                unseen.setdefault(key, i)
        fresh = encode(frames[list(unseen.values())]) if unseen else None
        if fresh is not None:
            self._keep(list(unseen), fresh)
        rows = torch.tensor([self._rows.get(key, -1) for key in keys])
        if bool((rows >= 0).all()):
            return self._table[rows]
        assert fresh is not None  # a frame not kept was encoded now
        out = fresh.new_empty((len(keys), *fresh.shape[1:]))
        kept = rows >= 0
        if self._table is not None:
            out[kept] = self._table[rows[kept]]
        place = {key: j for j, key in enumerate(unseen)}
        out[~kept] = fresh[[place[key] for key, row in zip(keys, rows.tolist()) if row < 0]]
        return out

    def _keep(self, keys: list[bytes], values: Tensor) -> None:
        if self._table is None:  # the whole budget at once: pages are only committed as rows are written
            capacity = self.budget_bytes // (values[0].numel() * values.element_size())
            self._table = values.new_empty((capacity, *values.shape[1:]))
        n = len(self._rows)
        take = min(len(keys), len(self._table) - n)
        if take > 0:
            self._table[n:n + take] = values[:take]
            self._rows.update(zip(keys[:take], range(n, n + take)))


HUB_LAYOUT = "torch hub"
"""The official DINOv2 layout (``dinov2_vits14_pretrain.pth``): the encoder's own parameter names."""
HF_LAYOUT = "Hugging Face"
"""The ``transformers`` ``Dinov2Model`` layout (``facebook/dinov2-small``: ``model.safetensors`` or
``pytorch_model.bin``): ``embeddings.*``, ``encoder.layer.N.*`` with separate query / key / value, ``layernorm.*``."""

_HF_BLOCK = {  # Hugging Face name inside encoder.layer.N -> ours inside blocks.N (q / k / v handled apart)
    "norm1": "norm1", "attention.output.dense": "attn.proj", "norm2": "norm2", "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
}
_HF_TOP = {
    "embeddings.cls_token": "cls_token", "embeddings.mask_token": "mask_token",
    "embeddings.position_embeddings": "pos_embed", "embeddings.patch_embeddings.projection.weight":
    "patch_embed.proj.weight", "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}


def hf_to_hub(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A Hugging Face ``Dinov2Model`` state dict in the torch hub layout (q, k, v fused into ``qkv`` in that
    order; ``layer_scaleK.lambda1`` -> ``lsK.gamma``). A leading ``dinov2.`` prefix (task heads' checkpoints)
    is dropped; keys it does not know are kept as they are (and then reported as unexpected)."""
    if any(k.startswith("dinov2.") for k in state):
        state = {k.removeprefix("dinov2."): v for k, v in state.items() if k.startswith("dinov2.")}
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        if key in _HF_TOP:
            out[_HF_TOP[key]] = value
            continue
        parts = key.split(".")
        if len(parts) < 4 or parts[:2] != ["encoder", "layer"] or not parts[2].isdigit():
            out[key] = value
            continue
        n, rest = parts[2], ".".join(parts[3:])
        module, _, param = rest.rpartition(".")
        if module.startswith("attention.attention.") and module.rsplit(".", 1)[1] in ("query", "key", "value"):
            qkv.setdefault((n, param), {})[module.rsplit(".", 1)[1]] = value
        elif module in ("layer_scale1", "layer_scale2") and param == "lambda1":
            out[f"blocks.{n}.ls{module[-1]}.gamma"] = value
        elif module in _HF_BLOCK:
            out[f"blocks.{n}.{_HF_BLOCK[module]}.{param}"] = value
        else:
            out[key] = value
    for (n, param), parts in qkv.items():
        if set(parts) == {"query", "key", "value"}:
            out[f"blocks.{n}.attn.qkv.{param}"] = torch.cat([parts["query"], parts["key"], parts["value"]], 0)
        else:  # incomplete: keep what is there under its own name, so that the error names it
            out.update({f"encoder.layer.{n}.attention.attention.{m}.{param}": v for m, v in parts.items()})
    return out


def dinov2_layout(state: dict[str, Tensor]) -> str | None:
    """Which DINOv2 layout ``state`` is in (:data:`HUB_LAYOUT`, :data:`HF_LAYOUT`), or None."""
    if "patch_embed.proj.weight" in state:
        return HUB_LAYOUT
    if any(k.removeprefix("dinov2.") == "embeddings.patch_embeddings.projection.weight" for k in state):
        return HF_LAYOUT
    return None


def _read_state(path: Path) -> dict[str, Tensor]:
    """A flat state dict from ``.safetensors`` (safetensors) or any other file (``torch.load``, weights only)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = "safetensors file" if path.suffix == ".safetensors" else "PyTorch state dict"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise LewmBenchError(f"{path}: not a readable {kind} ({type(exc).__name__}: {reason}); give a DINOv2 "
                             "checkpoint: dinov2_vits14_pretrain.pth (torch hub) or facebook/dinov2-small's "
                             "model.safetensors / pytorch_model.bin (Hugging Face)") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LewmBenchError(f"{path}: expected a flat state dict of tensors (a DINOv2 checkpoint in the torch hub "
                             f"or Hugging Face layout); got {type(state).__name__}")
    return state


def load_dinov2_weights(encoder: PatchViT, path: str | os.PathLike[str]) -> str:
    """Load DINOv2 weights into ``encoder`` from a local file in either layout; returns the layout found.

    The layout is detected from the keys: torch hub (``dinov2_vits14_pretrain.pth``: ``patch_embed.*``,
    ``blocks.N.*``) or Hugging Face (``facebook/dinov2-small``'s ``model.safetensors`` or
    ``pytorch_model.bin``: ``embeddings.*``, ``encoder.layer.N.*``; converted, q / k / v fused). Errors
    name the first missing, unexpected or mis-shaped keys.
    """
    path = Path(path)
    if not path.exists():
        raise LewmBenchError(f"--encoder-weights {path}: no such file; give a local DINOv2 ViT-S/14 checkpoint "
                             "(dinov2_vits14_pretrain.pth, or facebook/dinov2-small's model.safetensors) or omit "
                             "the option to use a self-pretrained encoder")
    state = _read_state(path)
    layout = dinov2_layout(state)
    converted = hf_to_hub(state) if layout == HF_LAYOUT else state
    problems = state_mismatches(encoder, converted)
    if problems:
        what = (f"a {layout}-layout DINOv2 checkpoint that does not fit" if layout else
                "neither the torch hub DINOv2 layout (patch_embed.*, blocks.N.*) nor the Hugging Face one "
                "(embeddings.*, encoder.layer.N.*); against the torch hub layout it has")
        raise LewmBenchError(f"{path}: {what} the configured encoder (width {encoder.config.width}, depth "
                             f"{encoder.config.depth}, positional grid {encoder.config.pos_grid}): {problems}")
    encoder.load_state_dict(converted)
    return layout or HUB_LAYOUT


def patchify(x: Tensor, patch: int) -> Tensor:
    """(N, 3, S, S) -> (N, P, 3 * patch^2), patches in row-major order (the ViT's token order)."""
    n, c, s, _ = x.shape
    g = s // patch
    return x.reshape(n, c, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5).reshape(n, g * g, c * patch * patch)


def pretrain_masked(encoder: PatchViT, sample: Callable[[torch.Generator, int], Tensor], steps: int, batch: int,
                    lr: float, mask_ratio: float, seed: int, device: torch.device, progress: bool = True,
                    bf16: bool = False) -> list[float]:
    """Masked-patch autoencoding of ``encoder`` on environment frames; returns the loss per step.

    ``sample(generator, n)`` returns ``n`` uint8 frames (n, 3, H, W) drawn with ``generator``. ``bf16``: forward
    passes under bf16 autocast (weights, optimiser and the loss stay fp32), as a training run in bf16.
    """
    cfg = encoder.config
    decoder = nn.Linear(cfg.width, 3 * cfg.patch_size ** 2).to(device)
    params = list(encoder.parameters()) + list(decoder.parameters())
    for p in encoder.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    gen = torch.Generator().manual_seed(seed)
    encoder.train()
    losses = []
    bar = tqdm(range(steps), desc="pre-training frozen encoder (masked patches)", unit="step", disable=not progress,
               leave=False)
    for step in bar:
        for group in opt.param_groups:  # linear warm-up over the first 10%, then constant
            group["lr"] = lr * min(1.0, (step + 1) / max(1, steps // 10))
        x = preprocess(sample(gen, batch).to(device), cfg.input_size)
        mask = torch.rand(len(x), encoder.num_patches, generator=gen).to(device) < mask_ratio
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            recon = decoder(encoder(x, mask)[:, 1:])
        loss = F.mse_loss(recon.float(), patchify(x, cfg.patch_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    encoder.eval()
    for p in encoder.parameters():  # frozen, and without the last step's gradients (a later clipping would count them)
        p.requires_grad_(False)
        p.grad = None
    return losses


def pretrain_masked_cached(encoder: PatchViT, sample: Callable[[torch.Generator, int], Tensor], steps: int, batch: int,
                           lr: float, mask_ratio: float, seed: int, device: torch.device, folder: Path | None,
                           identity: dict, progress: bool = True, bf16: bool = False) -> Path | None:
    """:func:`pretrain_masked`, its result kept in ``folder`` and reused by any later call with identical inputs.

    Several agents freeze the same pre-trained encoder (DINO-WM-style and the goal-conditioned policies that
    encode with it), each pre-training it again with the same seed on the same frames. The key is the hash of
    everything that decides the result: ``identity`` (what ``sample`` draws from: the dataset and its clips), the
    recipe, the seed, the encoder's initial weights and the global random state (the decoder's initialisation and
    dropout draw from it), the device type and torch version. A hit loads the encoder and sets the global random
    state to what pre-training left, so what follows is as without the cache, bit for bit. ``folder=None``, or one
    that cannot be written, pre-trains without keeping. Returns the cache file used or written.
    """
    cuda = device.type == "cuda"
    rng = [torch.get_rng_state()] + ([torch.cuda.get_rng_state(device)] if cuda else [])
    recipe = [steps, batch, lr, mask_ratio] + (["bf16"] if bf16 else [])  # fp32 keys as before bf16 was an option
    key = content_hash({**identity, "recipe": recipe, "seed": seed, "device": device.type,
                        "torch": torch.__version__, "init": tensor_digest(encoder.state_dict().values()),
                        "rng": tensor_digest(rng)})
    path = None if folder is None else Path(folder) / f"masked-{key}.pt"
    if path is not None and path.exists():
        try:
            blob = torch.load(path, map_location=device, weights_only=True)
            encoder.load_state_dict(blob["encoder"])
            torch.set_rng_state(blob["rng"].cpu())
            if cuda:
                torch.cuda.set_rng_state(blob["rng_cuda"].cpu(), device)
            encoder.eval().requires_grad_(False)
            print(f"frozen encoder: pre-trained by an earlier run with identical inputs, loaded from {path}",
                  file=sys.stderr)
            return path
        except (OSError, RuntimeError, KeyError) as e:
            warnings.warn(f"{path}: unreadable encoder cache ({type(e).__name__}: {e}); pre-training again",
                          stacklevel=2)
    pretrain_masked(encoder, sample, steps, batch, lr, mask_ratio, seed, device, progress, bf16)
    if path is None:
        return None
    blob = {"encoder": encoder.state_dict(), "rng": torch.get_rng_state()}
    if cuda:
        blob["rng_cuda"] = torch.cuda.get_rng_state(device)
    try:
        with atomic_path(path) as tmp:
            torch.save(blob, tmp)
    except OSError as e:
        warnings.warn(f"could not keep the pre-trained encoder in {path} ({e}); later runs will pre-train again",
                      stacklevel=2)
        return None
    return path
