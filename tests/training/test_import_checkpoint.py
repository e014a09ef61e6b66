"""Import of released LeWM checkpoints: key map round trip, outputs against the reference computation, errors."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lewm_bench.cli import main
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.errors import LewmBenchError
from lewm_bench.models.lewm import PRESETS, LeWM
from lewm_bench.training import import_checkpoint as ic
from lewm_bench.training.checkpoint import load_world_model

BLOCK = 10  # two-room: 2-D actions x frameskip 5


def _model(seed=0):
    torch.manual_seed(seed)
    model = LeWM(PRESETS["smoke"], 16, BLOCK)
    with torch.no_grad():  # non-trivial values everywhere (AdaLN starts at zero, BatchNorm at identity)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _write_reference(folder, model, full_config=False):
    """A checkpoint in stable-worldmodel's layout (weights.pt + config.json) made from our model."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ic.to_reference_state(model), folder / "weights.pt")
    cfg = ic.to_reference_config(model.config, model.image_size, model.action_dim)
    if full_config:
        cfg = {"model": cfg, "data": {"dataset": {"frameskip": 5}}, "img_size": model.image_size}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _ln(x, ref, name, eps):
    return F.layer_norm(x, x.shape[-1:], ref[f"{name}.weight"], ref[f"{name}.bias"], eps)


def _mlp(ref, name, x):  # stable-worldmodel's MLP with BatchNorm1d in eval mode
    h = F.linear(x, ref[f"{name}.net.0.weight"], ref[f"{name}.net.0.bias"])
    h = F.batch_norm(h, ref[f"{name}.net.1.running_mean"], ref[f"{name}.net.1.running_var"],
                     ref[f"{name}.net.1.weight"], ref[f"{name}.net.1.bias"], False, 0.0, 1e-5)
    return F.linear(F.gelu(h), ref[f"{name}.net.3.weight"], ref[f"{name}.net.3.bias"])


def reference_encode(ref, frames, heads, depth):
    """The reference's embedding, computed from its state dict as Hugging Face's ViT does, on ImageNet inputs."""
    b, t = frames.shape[:2]
    u = frames.flatten(0, 1).float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # stable-pretraining dataset_stats.ImageNet
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    w = ref["encoder.embeddings.patch_embeddings.projection.weight"]
    x = F.conv2d((u - mean) / std, w, ref["encoder.embeddings.patch_embeddings.projection.bias"], stride=w.shape[-1])
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([ref["encoder.embeddings.cls_token"].expand(len(x), -1, -1), x], 1)
    x = x + ref["encoder.embeddings.position_embeddings"]
    n, d = x.shape[1], x.shape[2]
    for i in range(depth):
        p = f"encoder.encoder.layer.{i}."
        h = _ln(x, ref, p + "layernorm_before", 1e-12)
        q, k, v = (F.linear(h, ref[p + f"attention.attention.{s}.weight"], ref[p + f"attention.attention.{s}.bias"])
                   .view(len(x), n, heads, d // heads).transpose(1, 2) for s in ("query", "key", "value"))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), -1) @ v
        x = x + F.linear(att.transpose(1, 2).reshape(len(x), n, d), ref[p + "attention.output.dense.weight"],
                         ref[p + "attention.output.dense.bias"])
        h = _ln(x, ref, p + "layernorm_after", 1e-12)
        h = F.gelu(F.linear(h, ref[p + "intermediate.dense.weight"], ref[p + "intermediate.dense.bias"]))
        x = x + F.linear(h, ref[p + "output.dense.weight"], ref[p + "output.dense.bias"])
    cls = _ln(x, ref, "encoder.layernorm", 1e-12)[:, 0]
    return _mlp(ref, "projector", cls).view(b, t, -1)


def reference_predict(ref, emb, actions, heads, depth):
    """stable-worldmodel's Embedder -> Predictor -> pred_proj, from its state dict."""
    c = F.conv1d(actions.permute(0, 2, 1), ref["action_encoder.patch_embed.weight"],
                 ref["action_encoder.patch_embed.bias"]).permute(0, 2, 1)
    c = F.linear(F.silu(F.linear(c, ref["action_encoder.embed.0.weight"], ref["action_encoder.embed.0.bias"])),
                 ref["action_encoder.embed.2.weight"], ref["action_encoder.embed.2.bias"])
    b, t, d = emb.shape
    x = emb + ref["predictor.pos_embedding"][:, :t]
    for i in range(depth):
        p = f"predictor.transformer.layers.{i}."
        mod = F.linear(F.silu(c), ref[p + "adaLN_modulation.1.weight"], ref[p + "adaLN_modulation.1.bias"])
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = mod.chunk(6, -1)
        h = F.layer_norm(x, (d,), eps=1e-6) * (1 + sc_a) + sh_a
        h = _ln(h, ref, p + "attn.norm", 1e-5)
        q, k, v = (z.view(b, t, heads, -1).transpose(1, 2) for z in F.linear(h, ref[p + "attn.to_qkv.weight"])
                   .chunk(3, -1))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
        x = x + g_a * F.linear(att, ref[p + "attn.to_out.0.weight"], ref[p + "attn.to_out.0.bias"])
        h = _ln(F.layer_norm(x, (d,), eps=1e-6) * (1 + sc_m) + sh_m, ref, p + "mlp.net.0", 1e-5)
        h = F.gelu(F.linear(h, ref[p + "mlp.net.1.weight"], ref[p + "mlp.net.1.bias"]))
        x = x + g_m * F.linear(h, ref[p + "mlp.net.4.weight"], ref[p + "mlp.net.4.bias"])
    x = _ln(x, ref, "predictor.transformer.norm", 1e-5)
    return _mlp(ref, "pred_proj", x.flatten(0, 1)).view(b, t, d)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=6, max_steps=30,
                        image_size=16)
    return collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)


def test_key_map_round_trip_gives_the_same_outputs(tmp_path, data):
    model = _model()
    src = _write_reference(tmp_path / "release", model)
    result = ic.import_checkpoint(src, data, out=tmp_path / "run")
    assert result.env == "two-room" and result.frameskip == 5
    loaded = load_world_model(tmp_path / "run", "two-room", "lewm")
    frames = torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8)
    actions = torch.randn(2, 6, BLOCK)
    with torch.no_grad():
        z0, z1 = model.encode(frames), loaded.model.encode(frames)
        torch.testing.assert_close(z1, z0, rtol=0, atol=1e-5)
        torch.testing.assert_close(loaded.model.rollout(z0[:, :3], actions), model.rollout(z0[:, :3], actions),
                                   rtol=0, atol=1e-6)
    assert loaded.run.frameskip == 5 and loaded.run.profile == "paper" and loaded.run.data.action_dim == BLOCK
    assert (tmp_path / "run" / "import.json").exists()


def test_imported_model_computes_what_the_reference_module_computes(tmp_path, data):
    """Against a from-scratch reference forward (ImageNet-normalised pixels, HF ViT, AdaLN predictor)."""
    model = _model(1)
    src = _write_reference(tmp_path / "release", model)
    ref = torch.load(src / "weights.pt", weights_only=True)
    ic.import_checkpoint(src, data, out=tmp_path / "run")
    ours = load_world_model(tmp_path / "run", "two-room").model
    enc, pred = model.config.encoder, model.config.predictor
    frames = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    actions = torch.randn(2, 3, BLOCK)
    with torch.no_grad():
        z_ref = reference_encode(ref, frames, enc.heads, enc.depth)
        torch.testing.assert_close(ours.encode(frames), z_ref, rtol=0, atol=1e-4)
        torch.testing.assert_close(ours.predict(z_ref, actions), reference_predict(ref, z_ref, actions, pred.heads,
                                                                                   pred.depth), rtol=0, atol=1e-5)


def test_paper_preset_maps_onto_the_released_parameter_count():
    cfg = ic.to_reference_config(PRESETS["paper"], 224, BLOCK)
    read = ic.read_reference_config({"model": cfg, "data": {"dataset": {"frameskip": 5}}}, "cfg")
    assert read.config == PRESETS["paper"] and read.frameskip == 5 and read.image_size == 224
    cube = ic.read_reference_config(ic.to_reference_config(PRESETS["paper"], 224, 25), "cfg")  # 5-D actions x 5
    assert cube.config == PRESETS["paper"] and cube.block_dim == 25
    # the paper preset's exact counts (18,034,478 and 18,034,628) are tested in tests/models/test_lewm.py


def test_le_wm_hugging_face_config_form_is_read(tmp_path, data):
    """le-wm's released config.json: the same sub-configs, no _target_ keys, projectors without norm_fn."""
    model = _model(3)
    src = _write_reference(tmp_path / "release", model)
    cfg = json.loads((src / "config.json").read_text())
    cfg.pop("_target_")
    for section in cfg.values():
        section.pop("_target_", None)
        section.pop("norm_fn", None)
    (src / "config.json").write_text(json.dumps(cfg))
    ic.import_checkpoint(src, data, out=tmp_path / "run")
    frames = torch.randint(0, 256, (1, 2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(load_world_model(tmp_path / "run", "two-room").model.encode(frames),
                                   model.encode(frames), rtol=0, atol=1e-5)


def test_full_training_config_and_wrapped_weights_are_accepted(tmp_path, data):
    model = _model(2)
    src = _write_reference(tmp_path / "release", model, full_config=True)
    state = torch.load(src / "weights.pt", weights_only=True)
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}}, src / "weights.pt")
    ic.import_checkpoint(src / "weights.pt", data, out=tmp_path / "run")
    loaded = load_world_model(tmp_path / "run", "two-room").model
    frames = torch.randint(0, 256, (1, 2, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(frames), model.encode(frames), rtol=0, atol=1e-5)


def test_foreign_and_missing_keys_are_named_in_one_line(tmp_path, data):
    src = _write_reference(tmp_path / "release", _model())
    state = torch.load(src / "weights.pt", weights_only=True)
    del state["predictor.pos_embedding"]
    state["head.weight"] = torch.zeros(3)
    torch.save(state, src / "weights.pt")
    with pytest.raises(LewmBenchError) as err:
        ic.import_checkpoint(src, data, out=tmp_path / "run")
    msg = str(err.value)
    assert "\n" not in msg and "missing (1): predictor.pos_embedding" in msg and "unexpected (1): head.weight" in msg


def test_wrong_shapes_and_bad_files_give_one_line_errors(tmp_path, data, capsys):
    src = _write_reference(tmp_path / "release", _model())
    state = torch.load(src / "weights.pt", weights_only=True)
    state["predictor.transformer.norm.weight"] = torch.ones(7)
    torch.save(state, src / "weights.pt")
    with pytest.raises(LewmBenchError, match=r"shape mismatch \(1\): predictor.norm.weight: expected \(32,\)"):
        ic.import_checkpoint(src, data, out=tmp_path / "run")
    (src / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(LewmBenchError, match="unreadable as a state dict"):
        ic.import_checkpoint(src, data, out=tmp_path / "run")
    (src / "config.json").write_text(json.dumps({"_target_": "x.PLDM", "encoder": {}, "predictor": {},
                                                 "action_encoder": {}}))
    assert main(["import", "checkpoint", str(src), "--data", str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not LeWM" in err
    cfg = ic.to_reference_config(PRESETS["smoke"], 32, BLOCK)  # frames of 32 px, dataset of 16 px
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LewmBenchError, match="frames are 16 px but the checkpoint's encoder takes 32 px"):
        ic.import_checkpoint(src, data, out=tmp_path / "run")


def test_cli_imports_and_refuses_to_overwrite(tmp_path, data, capsys):
    src = _write_reference(tmp_path / "release", _model())
    args = ["import", "checkpoint", str(src), "--data", str(data), "--out", str(tmp_path / "run")]
    assert main(args) == 0
    assert "two-room" in capsys.readouterr().out
    assert main(args) == 2 and "--force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
