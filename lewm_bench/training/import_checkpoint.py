"""Import a released LeWM checkpoint (stable-worldmodel's ``weights.pt`` + ``config.json``) into a run folder of ours.

Layout read from stable-worldmodel 0.1.1: ``wm/utils.py`` (``save_pretrained``: ``torch.save(model.state_dict())``
and the Hydra config as JSON), ``wm/lewm/lewm.py`` and ``wm/lewm/module.py`` (the module names) and
``scripts/train/lewm.py`` (the image preprocessing); the encoder is stable-pretraining's ``vit_hf`` (a Hugging
Face ``ViTModel`` without pooler). ``config.json`` may be the model's Hydra config (``_target_`` ...LeWM), the
whole training config (the model under ``model``), or the le-wm repository's Hugging Face form (the same
sub-configs, ``_target_`` optional). A weights file wrapped as ``{"state_dict": ...}`` or ``{"model": ...}``
(keys optionally prefixed ``model.``) is unwrapped. le-wm's pickled model objects (``*_object.ckpt``) need its
code to be read and are refused with a message; the le-wm repository could not be fetched here, so its own
formats beyond this are not supported.

The key map is :data:`KEY_MAP` (ours <- reference); two tensors change form on the way:

* the ViT's fused ``qkv`` is the reference's ``query``, ``key`` and ``value`` stacked (same head layout);
* the action embedder's first layer is the reference's kernel-1 ``Conv1d`` (weight ``(out, in, 1)``).

The reference feeds the encoder ImageNet-normalised pixels; ours feeds ``2u - 1`` (``u`` in [0, 1]). The
patch embedding is linear and unpadded, so the import folds the difference into its weight and bias
(``W / (2 std_c)``, ``b + sum W (0.5 - mean_c) / std_c``): our model then computes the reference's
embeddings from our inputs, and no preprocessing code changes. The action statistics are the reference's:
z-scoring with the mean and (population) std of every finite action row of the dataset.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lewm_bench.errors import LewmBenchError
from lewm_bench.io import write_json
from lewm_bench.locks import lock_output
from lewm_bench.models.lewm import EncoderConfig, LeWM, LeWMConfig, PredictorConfig
from lewm_bench.training.checkpoint import load_state_checked, save_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The reference's pixel normalisation (stable-pretraining's ``dataset_stats.ImageNet``)."""
VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16),
             "huge": (1280, 32, 16)}
"""stable-pretraining's ``vit_hf`` sizes: (hidden size, layers, heads); MLP width 4 x hidden."""
IGNORED_KEYS = ("encoder.embeddings.mask_token",)
"""Reference keys with no counterpart and no effect on outputs (the ViT's mask token, unused without a mask)."""

_E = "encoder.encoder.layer.{0}."
_P = "predictor.transformer.layers.{0}."
KEY_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"encoder\.patch\.(weight|bias)", ("encoder.embeddings.patch_embeddings.projection.{0}",)),
    (r"encoder\.cls", ("encoder.embeddings.cls_token",)),
    (r"encoder\.pos", ("encoder.embeddings.position_embeddings",)),
    (r"encoder\.blocks\.(\d+)\.norm1\.(weight|bias)", (_E + "layernorm_before.{1}",)),
    (r"encoder\.blocks\.(\d+)\.norm2\.(weight|bias)", (_E + "layernorm_after.{1}",)),
    (r"encoder\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)", tuple(_E + f"attention.attention.{n}.{{1}}"
                                                              for n in ("query", "key", "value"))),
    (r"encoder\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", (_E + "attention.output.dense.{1}",)),
    (r"encoder\.blocks\.(\d+)\.mlp\.0\.(weight|bias)", (_E + "intermediate.dense.{1}",)),
    (r"encoder\.blocks\.(\d+)\.mlp\.3\.(weight|bias)", (_E + "output.dense.{1}",)),
    (r"encoder\.norm\.(weight|bias)", ("encoder.layernorm.{0}",)),
    (r"projector\.(\d)\.(\w+)", ("projector.net.{0}.{1}",)),
    (r"pred_projector\.(\d)\.(\w+)", ("pred_proj.net.{0}.{1}",)),
    (r"action_embedder\.step\.(weight|bias)", ("action_encoder.patch_embed.{0}",)),
    (r"action_embedder\.mlp\.(\d)\.(weight|bias)", ("action_encoder.embed.{0}.{1}",)),
    (r"predictor\.pos", ("predictor.pos_embedding",)),
    (r"predictor\.blocks\.(\d+)\.attn_norm\.(weight|bias)", (_P + "attn.norm.{1}",)),
    (r"predictor\.blocks\.(\d+)\.attn\.qkv\.weight", (_P + "attn.to_qkv.weight",)),
    (r"predictor\.blocks\.(\d+)\.attn\.proj\.(weight|bias)", (_P + "attn.to_out.0.{1}",)),
    (r"predictor\.blocks\.(\d+)\.mlp_norm\.(weight|bias)", (_P + "mlp.net.0.{1}",)),
    (r"predictor\.blocks\.(\d+)\.mlp\.0\.(weight|bias)", (_P + "mlp.net.1.{1}",)),
    (r"predictor\.blocks\.(\d+)\.mlp\.3\.(weight|bias)", (_P + "mlp.net.4.{1}",)),
    (r"predictor\.blocks\.(\d+)\.modulation\.1\.(weight|bias)", (_P + "adaLN_modulation.1.{1}",)),
    (r"predictor\.norm\.(weight|bias)", ("predictor.transformer.norm.{0}",)),
)
"""Our LeWM state-dict keys (regular expressions) -> the reference keys they come from (``{i}``: the groups)."""


def reference_keys(key: str) -> tuple[str, ...]:
    """The reference keys our ``key`` is made from (several for the fused qkv).

    Raises:
        LewmBenchError: ``key`` has no reference counterpart (a CNN encoder, say).
    """
    for pattern, targets in KEY_MAP:
        m = re.fullmatch(pattern, key)
        if m:
            return tuple(t.format(*m.groups()) for t in targets)
    raise LewmBenchError(f"our LeWM key {key!r} has no counterpart in the reference module (only the ViT "
                         "encoder of the paper has one)")


def _patch_fold(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-input-channel scale and shift turning ImageNet inputs into ours: x_ref = x_ours * a + c."""
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    return (1.0 / (2.0 * std)).to(weight.device), ((0.5 - mean) / std).to(weight.device)


def from_reference_state(ref: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], source: str
                         ) -> dict[str, torch.Tensor]:
    """Our state dict from the reference's, for a model whose state dict is ``own`` (names and shapes).

    Raises:
        LewmBenchError: one line naming every missing and unexpected reference key (the first few of each).
    """
    used: set[str] = set()
    missing: list[str] = []
    out: dict[str, torch.Tensor] = {}
    for key in own:
        refs = reference_keys(key)
        absent = [r for r in refs if r not in ref]
        if absent:
            missing += absent
            continue
        used.update(refs)
        out[key] = _to_ours(key, [ref[r] for r in refs], source)
    unexpected = [k for k in ref if k not in used and k not in IGNORED_KEYS]
    if missing or unexpected:
        parts = [f"{name} ({len(keys)}): {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise LewmBenchError(f"{source}: weights are not the reference LeWM its config describes ({'; '.join(parts)}); "
                             "is it another model, or a config.json from another run?")
    return out


def _to_ours(key: str, tensors: list[torch.Tensor], source: str) -> torch.Tensor:
    try:
        if len(tensors) == 3:  # query, key, value -> fused qkv
            return torch.cat(tensors, 0)
        t = tensors[0]
        if key == "action_embedder.step.weight":
            return t.squeeze(-1) if t.ndim == 3 else t
        if key == "encoder.patch.weight":
            scale, _ = _patch_fold(t)
            return (t.double() * scale).to(t.dtype)
        return t
    except (RuntimeError, IndexError) as exc:
        raise LewmBenchError(f"{source}: cannot convert {key} ({exc}); the weights do not fit the config") from None


def _fold_patch_bias(state: dict[str, torch.Tensor], ref: Mapping[str, torch.Tensor]) -> None:
    w = ref["encoder.embeddings.patch_embeddings.projection.weight"]
    _, shift = _patch_fold(w)
    state["encoder.patch.bias"] = (state["encoder.patch.bias"].double()
                                   + (w.double() * shift).sum((1, 2, 3))).to(w.dtype)


def to_reference_state(model: LeWM) -> dict[str, torch.Tensor]:
    """The reference state dict of our (ViT) LeWM: the inverse of the import, for tests and comparisons."""
    ref: dict[str, torch.Tensor] = {}
    for key, t in model.state_dict().items():
        refs = reference_keys(key)
        t = t.detach().clone()
        if len(refs) == 3:
            for r, part in zip(refs, t.chunk(3, 0)):
                ref[r] = part.clone()
            continue
        if key == "action_embedder.step.weight":
            t = t.unsqueeze(-1)
        elif key == "encoder.patch.weight":
            scale, _ = _patch_fold(t)
            t = (t.double() / scale).to(t.dtype)
        ref[refs[0]] = t
    w = ref["encoder.embeddings.patch_embeddings.projection.weight"]
    _, shift = _patch_fold(w)
    b = "encoder.embeddings.patch_embeddings.projection.bias"
    ref[b] = (ref[b].double() - (w.double() * shift).sum((1, 2, 3))).to(w.dtype)
    return ref


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ReferenceModel:
    """What a reference config says: our config, the frame size and the action block size."""

    config: LeWMConfig
    image_size: int
    block_dim: int
    """Size of one action block (frameskip x env action dim)."""
    frameskip: int | None
    """Stated only by a full training config."""


def _model_section(cfg: Mapping[str, Any], source: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(model config, full training config or {})."""
    if isinstance(cfg.get("model"), Mapping) and "encoder" in cfg["model"]:
        return cfg["model"], cfg
    if all(k in cfg for k in ("encoder", "predictor", "action_encoder")):
        target = str(cfg.get("_target_", "LeWM"))
        if not target.endswith(("LeWM", "JEPA")):
            raise LewmBenchError(f"{source}: config.json describes {target}, not LeWM; import a LeWM checkpoint")
        return cfg, {}
    raise LewmBenchError(f"{source}: config.json is not a LeWM config (top-level keys: {', '.join(sorted(cfg))}; "
                         "expected encoder, predictor, action_encoder, projector, pred_proj, or a training config "
                         "with them under model)")


def read_reference_config(cfg: Mapping[str, Any], source: str) -> ReferenceModel:
    """Map a reference config (any of the forms in the module docstring) onto :class:`LeWMConfig`.

    Raises:
        LewmBenchError: a component our LeWM cannot represent, named with its value.
    """
    model, full = _model_section(cfg, source)
    try:
        enc, pred, act = model["encoder"], model["predictor"], model["action_encoder"]
        proj, pproj = model.get("projector"), model.get("pred_proj")
        target = str(enc.get("_target_", "vit_hf"))
        if not target.endswith("vit_hf"):
            raise LewmBenchError(f"{source}: encoder {target} is not supported (only stable-pretraining's vit_hf)")
        overrides = {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"}
        extra = sorted(set(enc) - {"_target_", "size", "patch_size", "image_size", "pretrained", "use_mask_token"}
                       - overrides)
        if extra:
            raise LewmBenchError(f"{source}: encoder options {', '.join(extra)} are not supported (vit_hf's size, "
                                 f"patch_size, image_size and the ViTConfig overrides {', '.join(sorted(overrides))})")
        if enc.get("pretrained"):
            raise LewmBenchError(f"{source}: encoder pretrained=true loads Hugging Face weights at build time; the "
                                 "released LeWM configs use false")
        size = enc.get("size", "tiny")
        if size not in VIT_SIZES:
            raise LewmBenchError(f"{source}: encoder size {size!r} unknown; expected one of {', '.join(VIT_SIZES)}")
        width, depth, heads = VIT_SIZES[size]
        # vit_hf passes extra keyword arguments on to ViTConfig (MLP width 4 x hidden unless overridden)
        width = int(enc.get("hidden_size", width))
        depth, heads = int(enc.get("num_hidden_layers", depth)), int(enc.get("num_attention_heads", heads))
        mlp_ratio = int(enc.get("intermediate_size", 4 * width)) / width
        for name, sec, keys in (("predictor", pred, ("input_dim", "hidden_dim", "output_dim")),
                                ("action_encoder", act, ("emb_dim",)),
                                ("projector", proj or {}, ("input_dim", "output_dim")),
                                ("pred_proj", pproj or {}, ("input_dim", "output_dim"))):
            for k in keys:
                if sec.get(k, width) not in (None, width):
                    raise LewmBenchError(f"{source}: {name}.{k} is {sec[k]}, not the encoder width {width}; our "
                                         "LeWM keeps one width throughout (as the paper)")
        if proj is None or pproj is None:
            raise LewmBenchError(f"{source}: config without projector or pred_proj; our LeWM has both")
        if proj["hidden_dim"] != pproj["hidden_dim"]:
            raise LewmBenchError(f"{source}: projector and pred_proj hidden sizes differ ({proj['hidden_dim']} vs "
                                 f"{pproj['hidden_dim']}); our LeWM uses one")
        if float(pred.get("emb_dropout", 0.0)) != 0.0:
            raise LewmBenchError(f"{source}: predictor emb_dropout {pred['emb_dropout']} is not supported (0 only)")
        sig = dict(full.get("loss", {}).get("sigreg", {})) if full else {}
        kw = dict(sig.get("kwargs", {}))
        defaults = LeWMConfig()
        config = LeWMConfig(
            encoder=EncoderConfig(kind="vit", patch_size=int(enc.get("patch_size", 16)), depth=depth, heads=heads,
                                  mlp_ratio=mlp_ratio),
            predictor=PredictorConfig(depth=int(pred["depth"]), heads=int(pred["heads"]),
                                      head_dim=int(pred.get("dim_head", 64)), mlp_dim=int(pred["mlp_dim"]),
                                      dropout=float(pred.get("dropout", 0.0))),
            width=width, projector_hidden=int(proj["hidden_dim"]),
            action_smooth_dim=int(act.get("smoothed_dim", 10)),
            action_hidden=int(act.get("mlp_scale", 4)) * width, history=int(pred["num_frames"]),
            sigreg_weight=float(sig.get("weight", defaults.sigreg_weight)),
            sigreg_directions=int(kw.get("num_proj", defaults.sigreg_directions)),
            sigreg_knots=int(kw.get("knots", defaults.sigreg_knots)))
        block = int(act["input_dim"])
        frameskip = full.get("data", {}).get("dataset", {}).get("frameskip") if full else None
        return ReferenceModel(config, int(enc.get("image_size", 224)), block,
                              int(frameskip) if frameskip is not None else None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LewmBenchError(f"{source}: config.json lacks or mistypes a field LeWM needs ({type(exc).__name__}: "
                             f"{exc})") from None


def to_reference_config(config: LeWMConfig, image_size: int, block_dim: int) -> dict[str, Any]:
    """stable-worldmodel's Hydra model config for our (ViT) LeWM: the inverse of :func:`read_reference_config`."""
    enc, pred, w = config.encoder, config.predictor, config.width
    if enc.kind != "vit" or config.action_hidden % w:
        raise LewmBenchError("only a ViT LeWM whose action MLP width is a multiple of its width has a reference config")
    mlp = {"_target_": "stable_worldmodel.wm.lewm.module.MLP", "input_dim": w, "output_dim": w,
           "hidden_dim": config.projector_hidden, "norm_fn": {"_target_": "torch.nn.BatchNorm1d", "_partial_": True}}
    return {
        "_target_": "stable_worldmodel.wm.lewm.LeWM",
        "encoder": {"_target_": "stable_pretraining.backbone.utils.vit_hf", "size": "tiny",
                    "patch_size": enc.patch_size, "image_size": image_size, "pretrained": False,
                    "use_mask_token": False, "hidden_size": w, "num_hidden_layers": enc.depth,
                    "num_attention_heads": enc.heads, "intermediate_size": int(w * enc.mlp_ratio)},
        "predictor": {"_target_": "stable_worldmodel.wm.lewm.module.Predictor", "num_frames": config.history,
                      "input_dim": w, "hidden_dim": w, "output_dim": w, "depth": pred.depth, "heads": pred.heads,
                      "mlp_dim": pred.mlp_dim, "dim_head": pred.head_dim, "dropout": pred.dropout, "emb_dropout": 0.0},
        "action_encoder": {"_target_": "stable_worldmodel.wm.lewm.module.Embedder", "input_dim": block_dim,
                           "smoothed_dim": config.action_smooth_dim, "emb_dim": w,
                           "mlp_scale": config.action_hidden // w},
        "projector": dict(mlp), "pred_proj": dict(mlp),
    }


# ----------------------------------------------------------------------------------- files
def _find_files(source: Path) -> tuple[Path, Path]:
    """(weights file, config.json) of a checkpoint folder or weights file."""
    if source.is_dir():
        pts = sorted(p for p in source.iterdir() if p.suffix in (".pt", ".ckpt", ".pth"))
        if len(pts) != 1:
            raise LewmBenchError(f"{source}: expected one weights file (.pt) beside config.json, found "
                                 f"{len(pts)}{': ' + ', '.join(p.name for p in pts) if pts else ''}; pass the file")
        weights, folder = pts[0], source
    elif source.is_file():
        weights, folder = source, source.parent
    else:
        raise LewmBenchError(f"{source}: no such checkpoint; give the folder holding weights.pt and config.json")
    config = folder / "config.json"
    if not config.is_file():
        raise LewmBenchError(f"{config}: missing; a released checkpoint comes as weights.pt with its config.json "
                             "(put both in one folder)")
    return weights, config


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types: pickle errors, zip errors, unsafe globals
        hint = ("a pickled model object (le-wm's *_object.ckpt) needs le-wm's code to be read; import the "
                "weights.pt + config.json it was made from") if "weights_only" in str(exc) or \
            "global" in str(exc).lower() else "not a PyTorch weights file"
        raise LewmBenchError(f"{path}: unreadable as a state dict ({type(exc).__name__}); {hint}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LewmBenchError(f"{path}: not a state dict (a mapping of names to tensors)")
    if all(k.startswith("model.") for k in obj):
        obj = {k[len("model."):]: v for k, v in obj.items()}
    return obj


def reference_action_stats(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of every finite action row of a dataset (stable-worldmodel's ``ZScoreScaler``)."""
    acts = np.asarray(dataset.actions[:], np.float64)
    acts = acts[np.isfinite(acts).all(1)]
    return acts.mean(0), acts.std(0)


@dataclass(frozen=True)
class ImportedCheckpoint:
    """What :func:`import_checkpoint` wrote."""

    run_dir: Path
    env: str
    parameters: int
    frameskip: int


def import_checkpoint(source: str | os.PathLike[str], data: str | os.PathLike[str], env: str | None = None,
                      out: str | os.PathLike[str] | None = None, root: str | os.PathLike[str] = "runs",
                      force: bool = False) -> ImportedCheckpoint:
    """Convert a released LeWM checkpoint into a run folder ``lewm-bench eval --checkpoint`` takes.

    Args:
        source: folder with ``weights.pt`` and ``config.json``, or the weights file (``config.json`` beside it).
        data: the dataset the model plans on (imported with :func:`lewm_bench.data.importer.import_dataset`);
            it gives the env, the action statistics and the frame size check.
        env: our env (default: the dataset's).
        out: run folder (default ``ROOT/train/ENV/lewm-authors``).
        root: the run root of the default ``out``.
        force: replace an existing run folder's checkpoint.
    """
    from lewm_bench.data.dataset import open_dataset
    from lewm_bench.envs import env_spec
    from lewm_bench.provenance import Provenance
    from lewm_bench.training.config import TrainConfig
    from lewm_bench.training.run_config import DataRecord, RunConfig

    source = Path(source)
    weights_path, config_path = _find_files(source)
    try:
        cfg = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LewmBenchError(f"{config_path}: unreadable JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(cfg, dict):
        raise LewmBenchError(f"{config_path}: not a JSON object")
    ref = read_reference_config(cfg, str(config_path))
    with open_dataset(data, env) as ds:
        meta = ds.meta
        mean, std = reference_action_stats(ds)
    spec = env_spec(meta.env_name)
    if ref.block_dim % spec.action_dim:
        raise LewmBenchError(f"{config_path}: action blocks of {ref.block_dim} do not divide into env "
                             f"{spec.name}'s {spec.action_dim}-D actions; is the checkpoint for another env?")
    frameskip = ref.block_dim // spec.action_dim
    if ref.frameskip is not None and ref.frameskip != frameskip:
        raise LewmBenchError(f"{config_path}: frameskip {ref.frameskip} but action blocks of {ref.block_dim} = "
                             f"{frameskip} x {spec.action_dim}; the config is inconsistent")
    if meta.image_size != ref.image_size:
        raise LewmBenchError(f"{data}: frames are {meta.image_size} px but the checkpoint's encoder takes "
                             f"{ref.image_size} px; import the dataset the checkpoint was trained on")
    model = LeWM(ref.config, ref.image_size, ref.block_dim)
    state = _load_weights(weights_path)
    ours = from_reference_state(state, model.state_dict(), str(weights_path))
    _fold_patch_bias(ours, state)
    load_state_checked(model, ours, str(weights_path))
    run_dir = Path(out) if out is not None else Path(root) / "train" / spec.name / "lewm-authors"
    record = DataRecord(path=os.path.relpath(Path(data).resolve(), run_dir.resolve()), identity=meta.identity,
                        image_size=meta.image_size, collector=meta.collector, episodes=meta.num_episodes,
                        action_dim=ref.block_dim, action_mean=tuple(map(float, mean)),
                        action_std=tuple(map(float, std)))
    run = RunConfig("lewm", spec.name, "paper", 0, frameskip, ref.config, TrainConfig(), record, 1,
                    Provenance.now("cpu"))
    run_dir.mkdir(parents=True, exist_ok=True)
    with lock_output(run_dir / "checkpoint.pt"):
        if (run_dir / "checkpoint.pt").exists() and not force:
            raise LewmBenchError(f"{run_dir}: already holds a checkpoint; pass --force to replace it, or another --out")
        write_json(run_dir / "config.json", run.to_dict())
        write_json(run_dir / "import.json", {
            "source_weights": str(weights_path.resolve()), "source_config": str(config_path.resolve()),
            "source_weights_sha256": _sha(weights_path), "reference_config": cfg, "image_preprocessing":
                "ImageNet normalisation folded into the patch embedding", "action_stats": "all finite rows of "
                f"{Path(data).name} (stable-worldmodel ZScoreScaler)"})
        save_checkpoint(run_dir / "checkpoint.pt", {"agent": "lewm", "env": spec.name, "config": run.to_dict(),
                                                    "model": model.state_dict(), "epoch": 0, "step": 0,
                                                    "imported_from": str(weights_path.resolve())})
    return ImportedCheckpoint(run_dir, spec.name, sum(p.numel() for p in model.parameters()), frameskip)


def _sha(path: Path) -> str:
    from lewm_bench.data.importer import file_sha256

    return file_sha256(path)


__all__ = ["IGNORED_KEYS", "IMAGENET_MEAN", "IMAGENET_STD", "KEY_MAP", "ImportedCheckpoint", "ReferenceModel",
           "VIT_SIZES", "from_reference_state", "import_checkpoint", "read_reference_config", "reference_action_stats",
           "reference_keys", "to_reference_config", "to_reference_state"]
