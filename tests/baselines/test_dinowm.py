import dataclasses

import pytest
import torch

from lewm_bench.baselines import dinov2, dinowm
from lewm_bench.baselines.dinov2 import PatchEncoderConfig, PatchViT, load_dinov2_weights, patchify, pretrain_masked
from lewm_bench.baselines.dinowm import DinoWM, frame_block_causal_mask
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.clips import ClipDataset
from lewm_bench.errors import LewmBenchError
from lewm_bench.evaluation.protocol import PROTOCOLS
from lewm_bench.evaluation.run import evaluate
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent
from lewm_bench.training import trainer
from lewm_bench.training.checkpoint import save_checkpoint
from lewm_bench.training.trainer import train

SMOKE = PROFILES["smoke"]
# Shapes of the official DINOv2 ViT-S/14 checkpoint (dinov2_vits14_pretrain.pth).
OFFICIAL = {"cls_token": (1, 1, 384), "pos_embed": (1, 1370, 384), "mask_token": (1, 384),
            "patch_embed.proj.weight": (384, 3, 14, 14), "patch_embed.proj.bias": (384,),
            "blocks.0.norm1.weight": (384,), "blocks.0.attn.qkv.weight": (1152, 384), "blocks.0.attn.qkv.bias": (1152,),
            "blocks.0.attn.proj.weight": (384, 384), "blocks.0.ls1.gamma": (384,), "blocks.0.norm2.bias": (384,),
            "blocks.0.mlp.fc1.weight": (1536, 384), "blocks.0.mlp.fc2.weight": (384, 1536),
            "blocks.11.ls2.gamma": (384,), "norm.weight": (384,), "norm.bias": (384,)}


def test_frame_block_causal_mask():
    m = frame_block_causal_mask(3, 2)
    expected = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0],
                             [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_predictions_do_not_see_later_frames():
    model = DinoWM(DinoWM.presets["smoke"], 16, 10).eval()
    z = torch.randn(1, 3, model.tokens_per_frame, model.embed_dim)
    a = torch.randn(1, 3, 10)
    out = model.predict(z, a)
    z2, a2 = z.clone(), a.clone()
    z2[:, 2], a2[:, 2] = torch.randn_like(z2[:, 2]), torch.randn_like(a2[:, 2])
    out2 = model.predict(z2, a2)
    torch.testing.assert_close(out[:, :2], out2[:, :2])
    assert not torch.allclose(out[:, 2], out2[:, 2])


def test_paper_sizes_match_dinov2_and_spec():
    model = DinoWM(DinoWM.presets["paper"], 224, 10)
    state = model.encoder.state_dict()
    for key, shape in OFFICIAL.items():
        assert tuple(state[key].shape) == shape, key
    assert sum(p.numel() for p in model.encoder.parameters()) == 22_056_576
    assert model.tokens_per_frame == 196 and model.encoder_tokens_per_frame == 197
    assert model.history * model.tokens_per_frame == 588
    assert model.predictor.pos.shape[-1] == 394  # 384 + 10-d action embedding


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_predictor_counts_exactly_the_reference():
    """stable-worldmodel 0.1.1's / DINO-WM's CausalPredictor at ViT-S/14 (224 px frames -> 196 px, 196 patches),
    3 frames, width 394, depth 6, 16 heads of 64, MLP 2048: 19,624,820 parameters."""
    model = DinoWM(DinoWM.presets["paper"], 224, 10)
    pred = model.predictor
    assert count(pred) == 19_624_820
    assert pred.pos.numel() == 3 * 196 * 394 == 231_672
    assert count(pred.norm) == 788
    block = pred.blocks[0]
    assert len(pred.blocks) == 6 and count(pred.blocks) == 6 * count(block) == 19_392_360
    assert block.attn.qkv.bias is None and tuple(block.attn.qkv.weight.shape) == (3072, 394)
    assert count(block.attn) == 394 * 3072 + 1024 * 394 + 394 == 1_614_218
    assert count(block.mlp) == 394 * 2048 + 2048 + 2048 * 394 + 394 == 1_616_266
    assert count(block.attn_norm) == count(block.mlp_norm) == 788
    assert not hasattr(pred, "head")  # no Linear(394 -> 384) output head
    assert count(model.action_encoder) == 10 * 10 + 10
    z, a = torch.randn(1, 3, 196, 384), torch.randn(1, 3, 10)
    assert model.predict(z, a).shape == (1, 3, 196, 384)  # action slots dropped


def test_dinowm_trains_with_its_own_recipe():
    info = get_agent("dinowm")
    paper = info.train_config_for(PROFILES["paper"])
    assert (paper.batch_size, paper.lr, paper.weight_decay, paper.epochs, paper.grad_clip) == (32, 5e-4, 0.0, 10, 1.0)
    assert paper.warmup_fraction == 0.0
    for name in ("cpu", "smoke"):
        cfg = info.train_config_for(PROFILES[name])
        assert cfg != PROFILES[name].train and (cfg.lr, cfg.weight_decay) == (5e-4, 0.0)
    assert get_agent("lewm").train_config_for(PROFILES["paper"]).lr == 5e-5


def small_cfg() -> PatchEncoderConfig:
    return PatchEncoderConfig(input_size=28, patch_size=14, width=24, depth=2, heads=2, pos_grid=37)


def test_dinov2_loader_reads_the_official_layout_and_names_mismatches(tmp_path):
    source = PatchViT(small_cfg())
    torch.save(source.state_dict(), tmp_path / "ok.pth")
    target = PatchViT(small_cfg())
    load_dinov2_weights(target, tmp_path / "ok.pth")
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(target(x), source(x))  # positional table resized 37x37 -> 2x2 in both

    bad = source.state_dict()
    bad["blocks.0.attn.qkv_w"] = bad.pop("blocks.0.attn.qkv.weight")
    bad["pos_embed"] = bad["pos_embed"][:, :197]
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(LewmBenchError, match=r"missing \(1\): blocks.0.attn.qkv.weight; unexpected \(1\): "
                                             r"blocks.0.attn.qkv_w; shape mismatch \(1\): pos_embed: expected "
                                             r"\(1, 1370, 24\), got \(1, 197, 24\)"):
        load_dinov2_weights(PatchViT(small_cfg()), tmp_path / "bad.pth")
    with pytest.raises(LewmBenchError, match="no such file"):
        load_dinov2_weights(target, tmp_path / "missing.pth")


def to_hugging_face(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our (torch hub) encoder state in transformers' Dinov2Model names: q, k, v split, LayerScale lambda1."""
    top = {"cls_token": "embeddings.cls_token", "mask_token": "embeddings.mask_token",
           "pos_embed": "embeddings.position_embeddings",
           "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
           "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
           "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"}
    block = {"norm1": "norm1", "attn.proj": "attention.output.dense", "norm2": "norm2", "mlp.fc1": "mlp.fc1",
             "mlp.fc2": "mlp.fc2", "ls1": "layer_scale1", "ls2": "layer_scale2"}
    out = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value.clone()
            continue
        _, n, *rest = key.split(".")
        module, param = ".".join(rest[:-1]), rest[-1]
        prefix = f"encoder.layer.{n}"
        if module == "attn.qkv":
            for name, part in zip(("query", "key", "value"), value.chunk(3, 0)):
                out[f"{prefix}.attention.attention.{name}.{param}"] = part.clone()
        else:
            out[f"{prefix}.{block[module]}.{'lambda1' if param == 'gamma' else param}"] = value.clone()
    return out


def test_dinov2_loader_reads_the_hugging_face_layout(tmp_path):
    from safetensors.torch import save_file

    source = PatchViT(small_cfg())
    for block in source.blocks:  # LayerScale away from its init, so that a swapped mapping would show
        block.ls1.gamma.data.uniform_(0.5, 1.5)
        block.ls2.gamma.data.uniform_(0.5, 1.5)
    hf = to_hugging_face(source.state_dict())
    assert "encoder.layer.1.attention.attention.value.weight" in hf and "encoder.layer.0.layer_scale2.lambda1" in hf
    save_file(hf, str(tmp_path / "model.safetensors"))
    torch.save(hf, tmp_path / "pytorch_model.bin")
    torch.save(source.state_dict(), tmp_path / "hub.pth")
    x = torch.randn(2, 3, 28, 28)
    for name, layout in (("model.safetensors", "Hugging Face"), ("pytorch_model.bin", "Hugging Face"),
                         ("hub.pth", "torch hub")):
        target = PatchViT(small_cfg())
        assert load_dinov2_weights(target, tmp_path / name) == layout
        assert torch.equal(target(x), source(x)), name

    wrong = dict(hf)
    wrong.pop("encoder.layer.0.attention.attention.key.weight")  # q / v without k cannot be fused
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(LewmBenchError, match=r"Hugging Face-layout DINOv2 checkpoint that does not fit .* missing "
                                             r"\(1\): blocks.0.attn.qkv.weight; unexpected \(2\): "
                                             r"encoder.layer.0.attention.attention.query.weight"):
        load_dinov2_weights(PatchViT(small_cfg()), tmp_path / "wrong.safetensors")
    save_file({"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.weight": torch.zeros(10, 8)},
              str(tmp_path / "resnet.safetensors"))
    with pytest.raises(LewmBenchError, match=r"neither the torch hub DINOv2 layout .* nor the Hugging Face one .* "
                                             r"missing \(\d+\): cls_token, pos_embed, mask_token \.\.\.; "
                                             r"unexpected \(2\): conv1.weight, fc.weight"):
        load_dinov2_weights(PatchViT(small_cfg()), tmp_path / "resnet.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(LewmBenchError, match="junk.safetensors: not a readable safetensors file"):
        load_dinov2_weights(PatchViT(small_cfg()), tmp_path / "junk.safetensors")


@pytest.mark.parametrize("bf16", [False, True])
def test_masked_pretraining_lowers_reconstruction_error(bf16):
    enc = PatchViT(PatchEncoderConfig(input_size=16, patch_size=4, width=32, depth=1, heads=2, pos_grid=4))
    frames = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)

    def sample(gen, n):
        return frames[torch.randint(len(frames), (n,), generator=gen)]

    losses = pretrain_masked(enc, sample, 60, 16, 3e-3, 0.5, 0, torch.device("cpu"), progress=False, bf16=bf16)
    assert all(p.dtype == torch.float32 for p in enc.parameters())
    assert sum(losses[-10:]) < 0.8 * sum(losses[:10])
    assert not any(p.requires_grad for p in enc.parameters())
    assert patchify(torch.arange(48.0).view(1, 3, 4, 4), 2).shape == (1, 4, 12)


def test_pretrained_encoder_is_kept_and_reused_bit_for_bit_by_identical_inputs_only(tmp_path, monkeypatch):
    frames = torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8)
    cfg = PatchEncoderConfig(input_size=16, patch_size=4, width=32, depth=1, heads=2, pos_grid=4)

    def sample(gen, n):
        return frames[torch.randint(len(frames), (n,), generator=gen)]

    def run(seed=0, identity=None, bf16=False):  # a fresh encoder and global random state, as a new run has
        torch.manual_seed(7)
        enc = PatchViT(cfg)
        path = dinov2.pretrain_masked_cached(enc, sample, 5, 8, 1e-3, 0.5, seed, torch.device("cpu"), tmp_path,
                                             identity or {"data": "frames"}, progress=False, bf16=bf16)
        return enc, path, torch.rand(4)  # what the run draws next

    first, path, after = run()
    assert path is not None and path.exists()
    monkeypatch.setattr(dinov2, "pretrain_masked", lambda *a, **k: pytest.fail("pre-trained again"))
    again, path2, after2 = run()
    assert path2 == path
    for (name, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(after, after2) and not any(p.requires_grad for p in again.parameters())
    for changed in ({"seed": 1}, {"identity": {"data": "other frames"}}, {"bf16": True}):
        with pytest.raises(pytest.fail.Exception, match="pre-trained again"):
            run(**changed)


@pytest.mark.parametrize("mode, expected", [("never", False), ("always", True)])
def test_encoder_pretraining_runs_in_the_precision_its_config_names(tmp_path, monkeypatch, mode, expected):
    seen = []
    monkeypatch.setattr(dinowm, "pretrain_masked_cached", lambda *a, **k: seen.append(a[-1]))
    smoke = get_agent("dinowm").config_for("smoke")
    config = dataclasses.replace(smoke, pretrain=dataclasses.replace(smoke.pretrain, bf16=mode))
    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=4, max_steps=20,
                                 image_size=16), tmp_path / "data.h5", workers=1, progress=False)
    DinoWM(config, 16, 2).prepare(ClipDataset(data, history=1, frameskip=1), torch.device("cpu"), 0, progress=False)
    assert seen == [expected]
    with pytest.raises(ValueError, match="bf16 must be one of"):
        dataclasses.replace(smoke.pretrain, bf16="fp16")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Smoke-train dinowm for 2 epochs, keeping a copy of the weights saved after each epoch."""
    root = tmp_path_factory.mktemp("dino")
    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), root / "data.h5", workers=1, progress=False)
    saved = []

    def keep(path, payload):
        saved.append({k: v.clone() for k, v in payload["model"].items()})
        save_checkpoint(path, payload)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer, "save_checkpoint", keep)
        train("two-room", SMOKE, agent="dinowm", data=data, out=root / "train/two-room/dinowm-smoke-seed0",
              progress=False)
    return root, saved


def test_frozen_encoder_gets_no_gradient_and_does_not_change(trained):
    _, (epoch1, epoch2) = trained
    enc = [k for k in epoch1 if k.startswith("encoder.")]
    pred = [k for k in epoch1 if k.startswith("predictor.")]
    assert enc and all(torch.equal(epoch1[k], epoch2[k]) for k in enc)
    assert any(not torch.equal(epoch1[k], epoch2[k]) for k in pred)
    model = DinoWM(DinoWM.presets["smoke"], 16, 10)
    model.loss(torch.randint(0, 256, (2, 4, 3, 16, 16), dtype=torch.uint8), torch.randn(2, 3, 10)).loss.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.predictor.parameters())


def test_smoke_eval_records_the_encoder_kind_and_patch_tokens(trained):
    root, _ = trained
    protocol = dataclasses.replace(PROTOCOLS["paper"], episodes=4)
    rec = evaluate("two-room", "dinowm", SMOKE, root=root, protocol=protocol, timing_calls=1, warmup_calls=0).record
    assert rec.encoder == "self-pretrained" and rec.tokens_per_frame == 16
    assert rec.encoder_tokens_per_frame == 17 and rec.params_frozen > 0 and rec.episodes == 4


@pytest.mark.parametrize("context", [1, 3])
def test_rollout_reusing_work_equals_the_full_recompute(context):
    """Key/value cache, context frames shared by runs of equal rows (a planning call's candidates), newest frame only
    in the last block: the same predictions as recomputing every token of every window."""
    torch.manual_seed(0)
    model = DinoWM(DinoWM.presets["smoke"], 16, 10).eval()
    shape = (context, model.tokens_per_frame, model.embed_dim)
    unrelated = torch.randn(3, *shape), torch.randn(3, context - 1 + 4, 10)
    runs = (torch.cat([torch.randn(1, *shape).expand(r, *shape) for r in (2, 3)]),
            torch.cat([torch.cat([torch.randn(1, context - 1, 10).expand(r, -1, -1) for r in (2, 3)]),
                       torch.randn(5, 4, 10)], 1))
    for z, a in (unrelated, runs):
        cached = model.rollout(z, a)
        model.kv_cache = False
        torch.testing.assert_close(cached, model.rollout(z, a), rtol=1e-4, atol=1e-5)
        model.kv_cache = True


def test_a_run_that_pretrains_its_encoder_ends_as_one_that_loads_it(trained, tmp_path, monkeypatch):
    """``trained`` pre-trained its encoder; the same run again loads it from the cache and must end with the same
    weights bit for bit. (Pre-training used to leave its last gradients on the frozen encoder, and the training's
    gradient clipping counted them: the two runs ended apart.)"""
    root, (_, pretrained_in_run) = trained
    saved = []
    monkeypatch.setattr(trainer, "save_checkpoint", lambda path, payload: saved.append(payload["model"]))
    train("two-room", SMOKE, agent="dinowm", data=root / "data.h5", out=tmp_path / "again", progress=False)
    assert saved[-1].keys() == pretrained_in_run.keys()
    assert all(torch.equal(saved[-1][k], pretrained_in_run[k]) for k in pretrained_in_run)


def test_feature_memo_encodes_each_frame_once_with_the_numbers_of_the_whole_batch():
    torch.manual_seed(0)
    encoder = PatchViT(DinoWM.presets["cpu"].encoder).eval()
    encoded = []

    def encode(frames):
        encoded.append(len(frames))
        return encoder(dinov2.preprocess(frames, 64))[:, 1:]

    frames = torch.randint(0, 256, (12, 3, 64, 64), dtype=torch.uint8)
    frames[5] = frames[0]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the cpu profile's training precision
        whole = encode(frames)
        memo = dinov2.FrozenFeatureMemo(2**30)
        assert torch.equal(memo(encoder, frames[:8], encode), whole[:8])
        assert torch.equal(memo(encoder, frames, encode), whole)
        assert encoded == [12, 7, 4] and len(memo) == 11  # frame 5 is frame 0: encoded once
        small = dinov2.FrozenFeatureMemo(3 * whole[0].numel() * whole.element_size())  # room for 3 frames
        assert all(torch.equal(small(encoder, frames, encode), whole) for _ in range(2)) and len(small) == 3
        assert encoded[-2:] == [11, 8]  # the frames that did not fit are encoded at every call
        encoder.norm.bias.add_(1.0)  # new weights: nothing kept is used
        assert torch.equal(memo(encoder, frames, encode), encode(frames)) and encoded[-2:] == [11, 12]
    with torch.no_grad():  # another precision neither
        assert torch.equal(memo(encoder, frames, encode), encode(frames)) and encoded[-2:] == [11, 12]
        assert torch.equal(memo(encoder, frames.float(), encode), encode(frames.float()))  # not uint8: encoded


def test_training_through_the_feature_memo_changes_no_number(trained, tmp_path, monkeypatch):
    """The same run with the memo (as shipped) and without it (a budget the training split's frames do not fit): the
    same weights bit for bit as ``trained``'s, and the memo did spare encodings."""
    root, (_, pretrained_in_run) = trained
    spared, saved = [], []
    memo_call = dinov2.FrozenFeatureMemo.__call__

    def counting(self, encoder, frames, encode):
        n = []
        out = memo_call(self, encoder, frames, lambda f: n.append(len(f)) or encode(f))
        spared.append(len(frames) - sum(n))
        return out

    monkeypatch.setattr(trainer, "save_checkpoint", lambda path, payload: saved.append(payload["model"]))
    monkeypatch.setattr(dinov2.FrozenFeatureMemo, "__call__", counting)
    for budget in (DinoWM.feature_memo_bytes, 1024):  # the smoke split's outputs fit the default, not 1 KiB
        monkeypatch.setattr(DinoWM, "feature_memo_bytes", budget)
        spared.clear()
        train("two-room", SMOKE, agent="dinowm", data=root / "data.h5", out=tmp_path / str(budget), progress=False)
        assert (sum(spared) > 0) == (budget > 1024)
    with_memo, without = saved[1], saved[3]
    assert with_memo.keys() == without.keys()
    assert all(torch.equal(with_memo[k], without[k]) and torch.equal(with_memo[k], pretrained_in_run[k])
               for k in with_memo)
