import pytest
import torch

from lewm_bench.models import layers
from lewm_bench.models.layers import AdaLNZeroBlock, Attention, ViTBlock
from lewm_bench.models.lewm import LeWM, LeWMConfig
from lewm_bench.protocols import WorldModel


@pytest.mark.parametrize("action_dim,action_embedder,total", [(10, 156_206, 18_034_478), (25, 156_356, 18_034_628)])
def test_paper_parameter_counts_equal_the_reference(action_dim, action_embedder, total):
    """The reference model's exact counts (ViT-Tiny/14 at 224 px; 2-D actions x frameskip 5, and Cube's 5-D)."""
    counts = LeWM(LeWMConfig(), image_size=224, action_dim=action_dim).parameter_counts()
    assert counts == {"encoder": 5_501_376, "projector": 792_768, "predictor": 10_791_360,
                      "pred_projector": 792_768, "action_embedder": action_embedder, "total": total}


def test_predictor_blocks_have_the_reference_inner_layernorms():
    """Each conditional block normalises the modulated input again, with an affine LayerNorm, inside both branches."""
    model = LeWM(LeWMConfig(), image_size=224, action_dim=10)
    inner = [n for blk in model.predictor.blocks for n in (blk.attn_norm, blk.mlp_norm)]
    assert len(inner) == 12
    for norm in inner:
        assert isinstance(norm, torch.nn.LayerNorm) and norm.elementwise_affine and norm.normalized_shape == (192,)
        assert norm.eps == 1e-5 and norm.weight.requires_grad and norm.bias is not None
    assert sum(p.numel() for n in inner for p in n.parameters()) == 4_608
    assert model.predictor.norm.eps == 1e-5


def test_inner_layernorms_come_after_the_modulation():
    """A shift added to every dimension alike is removed by a LayerNorm that follows the modulation, so it
    cannot change the block's output; without the inner LayerNorms it would."""
    torch.manual_seed(0)
    block = AdaLNZeroBlock(dim=32, heads=2, head_dim=16, mlp_dim=64, dropout=0.0).eval()
    torch.nn.init.normal_(block.modulation[1].weight, std=0.2)
    x, cond = torch.randn(3, 5, 32), torch.randn(3, 5, 32)
    with torch.no_grad():
        before = block(x, cond)
        block.modulation[1].bias[0:32] += 0.7  # shift of the attention branch
        block.modulation[1].bias[96:128] -= 0.4  # shift of the MLP branch
        torch.testing.assert_close(block(x, cond), before, atol=1e-5, rtol=1e-5)
        block.attn_norm.weight.mul_(2.0)  # the inner norms are used
        assert not torch.allclose(block(x, cond), before, atol=1e-3)


@pytest.mark.parametrize("profile,size", [("cpu", 32), ("cpu", 64), ("smoke", 16)])
def test_shapes_per_profile(profile, size):
    cfg = LeWM.presets[profile]
    model = LeWM(cfg, image_size=size, action_dim=10).eval()
    assert isinstance(model, WorldModel)
    frames = torch.randint(0, 256, (2, 4, 3, size, size), dtype=torch.uint8)
    z = model.encode(frames)
    assert z.shape == (2, 4, cfg.width)
    actions = torch.randn(2, 3, 10)
    assert model.predict(z[:, :3], actions).shape == (2, 3, cfg.width)
    # rollout: history of 2 frames, 1 past action block, 5 planned blocks
    assert model.rollout(z[:, :2], torch.randn(2, 1 + 5, 10)).shape == (2, 5, cfg.width)
    terms = model.train().loss(frames, actions)
    assert terms.loss.ndim == 0 and torch.isfinite(terms.loss)


def test_adaln_zero_blocks_start_as_identity():
    block = AdaLNZeroBlock(dim=32, heads=2, head_dim=16, mlp_dim=64, dropout=0.0)
    x, cond = torch.randn(3, 5, 32), torch.randn(3, 5, 32)
    torch.testing.assert_close(block(x, cond), x)
    model = LeWM(LeWM.presets["smoke"], 16, 10)
    for blk in model.predictor.blocks:
        assert torch.all(blk.modulation[1].weight == 0) and torch.all(blk.modulation[1].bias == 0)


def test_causal_mask_later_frames_never_change_earlier_predictions():
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    for blk in model.predictor.blocks:  # leave the identity start so the check is not vacuous
        torch.nn.init.normal_(blk.modulation[1].weight, std=0.1)
    z, a = torch.randn(2, 3, 32), torch.randn(2, 3, 10)
    out = model.predict(z, a)
    z2, a2 = z.clone(), a.clone()
    z2[:, 2] += 5.0
    a2[:, 2] -= 3.0
    out2 = model.predict(z2, a2)
    torch.testing.assert_close(out[:, :2], out2[:, :2])
    assert not torch.allclose(out[:, 2], out2[:, 2])


def test_rollout_applies_each_action_block_after_its_frame():
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    z, a = torch.randn(2, 3, 32), torch.randn(2, 4, 10)
    first = model.rollout(z, a[:, :3])  # history 3, 2 past blocks, one planned block
    torch.testing.assert_close(first[:, 0], model.predict(z, a[:, :3])[:, -1])
    two = model.rollout(z, a)
    torch.testing.assert_close(two[:, 0], first[:, 0])
    window = torch.cat([z[:, 1:], two[:, :1]], 1)
    torch.testing.assert_close(two[:, 1], model.predict(window, a[:, 1:4])[:, -1])
    with pytest.raises(ValueError, match="rollout needs"):
        model.rollout(z, a[:, :2])


def naive_rollout(model, history, actions):
    """The rollout by definition: each step predicts from the last ``history`` frames, every token recomputed."""
    embs, out = history, []
    for _ in range(actions.shape[1] - history.shape[1] + 1):
        n = embs.shape[1]
        lo = max(0, n - model.history)
        out.append(model.predict(embs[:, lo:n], actions[:, lo:n])[:, -1:])
        embs = torch.cat([embs, out[-1]], 1)
    return torch.cat(out, 1)


def candidate_rows(context, runs=(4, 3), horizon=5, dim=192):
    """Rows as a planning call tiles them: each run of rows shares its context frames and past actions
    (one episode's candidates), the planned actions differ in every row."""
    z = torch.cat([torch.randn(1, context, dim).expand(r, -1, -1) for r in runs])
    past = torch.cat([torch.randn(1, context - 1, 10).expand(r, -1, -1) for r in runs])
    return z.contiguous(), torch.cat([past, torch.randn(sum(runs), horizon, 10)], 1)


@pytest.mark.parametrize("context", [1, 2, 3])
def test_rollout_reusing_work_equals_the_rollout_by_definition(context):
    """Key/value cache, context frames shared by runs of equal rows, and only the newest output in the last block:
    the same predictions as recomputing every token of every window, for unrelated rows and for candidate rows."""
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["cpu"], 32, 10).eval()
    for blk in model.predictor.blocks:  # AdaLN-zero starts as the identity: give the blocks something to do
        torch.nn.init.normal_(blk.modulation[1].weight, std=0.05)
    unrelated = torch.randn(6, context, 192), torch.randn(6, context - 1 + 5, 10)
    for z, a in (unrelated, candidate_rows(context)):
        expected = naive_rollout(model, z, a)
        torch.testing.assert_close(model.rollout(z, a), expected, rtol=1e-4, atol=1e-5)
        model.kv_cache = False
        torch.testing.assert_close(model.rollout(z, a), expected, rtol=1e-4, atol=1e-5)
        model.kv_cache = True


def test_shared_context_frames_go_through_the_predictor_once_per_run_of_equal_rows():
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["cpu"], 32, 10).eval()
    rows = []
    hook = model.predictor.register_forward_hook(lambda m, args, out: rows.append(tuple(args[0].shape[:2])))
    z, a = candidate_rows(3, runs=(4, 3))
    model.rollout(z, a)
    # Window [0, 3) then [1, 4), [2, 5), [3, 6), [4, 7): the history frames 0 and 1 (2 past actions) lead the first
    # window, frame 2 the second: once per run (2 rows), then the candidates' own frames after them.
    assert rows == [(2, 2), (7, 1), (2, 1), (7, 2), (7, 3), (7, 3), (7, 3)]
    rows.clear()
    model.kv_cache = False
    model.rollout(z, a)
    assert rows == [(7, 3)] * 5
    hook.remove()


def test_one_token_attention_is_its_value_and_cached_steps_equal_the_full_pass():
    torch.manual_seed(0)
    block = AdaLNZeroBlock(32, 4, 8, 64, 0.0).eval()
    torch.nn.init.normal_(block.modulation[1].weight, std=0.1)
    x, cond = torch.randn(5, 3, 32), torch.randn(5, 3, 32)
    full = block(x, cond)
    one, kv = block(x[:, :1], cond[:, :1], keep=True)  # no query, no attention: the value
    torch.testing.assert_close(one, full[:, :1], rtol=1e-5, atol=1e-6)
    rest = block(x[:, 1:], cond[:, 1:], past=kv)  # two new tokens after a cached one: causal among themselves
    torch.testing.assert_close(rest, full[:, 1:], rtol=1e-5, atol=1e-6)
    for i in (1, 2):
        step, kv = block(x[:, i:i + 1], cond[:, i:i + 1], past=kv, keep=True)
        torch.testing.assert_close(step, full[:, i:i + 1], rtol=1e-5, atol=1e-6)
    assert kv[0].shape == (5, 4, 3, 8)
    last, kv = block(x, cond, keep=True, queries=1)  # only the newest output; every key and value
    torch.testing.assert_close(last, full[:, 2:], rtol=1e-5, atol=1e-6)
    assert kv[0].shape == (5, 4, 3, 8)
    with pytest.raises(ValueError, match="queries must be between 1 and the 3 tokens"):
        block(x, cond, queries=4)


@pytest.mark.parametrize("broadcast", [False, True])
@pytest.mark.parametrize("case", ["plain", "causal", "mask", "past", "past-causal", "queries"])
def test_explicit_attention_equals_scaled_dot_product_attention(case, broadcast, monkeypatch):
    """The explicit path (two products, or broadcast sums, and a softmax) computes what SDPA does."""
    monkeypatch.setattr(layers, "_broadcasts", lambda q, keys: broadcast)
    torch.manual_seed(0)
    attn = Attention(32, 4, 8).eval()
    x, past = torch.randn(6, 3, 32), (torch.randn(6, 4, 2, 8), torch.randn(6, 4, 2, 8))
    kwargs = {"plain": {}, "causal": {"causal": True}, "queries": {"causal": True, "queries": 1},
              "mask": {"mask": (torch.rand(3, 3) > 0.3) | torch.eye(3, dtype=torch.bool)},
              "past": {"past": past}, "past-causal": {"past": past, "causal": True, "keep": True}}[case]
    monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", (("cpu", None, None),))
    explicit = attn(x, **kwargs)
    monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", ())  # every call through SDPA
    fused = attn(x, **kwargs)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)


def test_broadcast_attention_only_inside_torch_compile(monkeypatch):
    """The broadcast form is for compiled rollouts (fused there); eagerly the batched products run."""
    monkeypatch.setattr(layers, "BROADCAST_ATTENTION_DEVICES", ("cpu",))
    q = torch.randn(6, 4, 3, 8)
    assert not layers._broadcasts(q, 3)
    seen = []
    torch.compile(lambda x: seen.append(layers._broadcasts(x, 3)) or x + 1, backend="eager")(q)
    torch.compile(lambda x: seen.append(layers._broadcasts(x, 6)) or x + 1, backend="eager")(q)
    assert seen == [True, False]  # 3 x 3 pairs: broadcast; 3 x 6 > BROADCAST_ATTENTION_PAIRS: products


def test_explicit_attention_on_cpu_is_taken_in_bf16_only(monkeypatch):
    """On the CPU the explicit products replace the fused kernel in bf16 (where it is slow) over any number of keys,
    not in fp32; within bf16 rounding they compute the same attention. A path's key limit is honoured."""
    q = torch.randn(6, 4, 2, 8)
    assert not layers._takes_explicit_path(q, 2, 0.0)
    assert layers._takes_explicit_path(q.bfloat16(), 2, 0.0) and layers._takes_explicit_path(q.bfloat16(), 600, 0.0)
    assert layers._takes_explicit_path(q.bfloat16(), 2, 0.1) and layers._takes_explicit_path(q, 100, 0.1)  # dropout
    assert not layers._takes_explicit_path(q.to("meta").bfloat16(), 2, 0.0)  # another device type
    attn = Attention(32, 4, 8).eval()
    x = torch.randn(6, 20, 32)
    mask = (torch.rand(20, 20) > 0.5) | torch.eye(20, dtype=torch.bool)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        explicit = attn(x, mask=mask).float()
        monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", ())
        fused = attn(x, mask=mask).float()
    torch.testing.assert_close(explicit, fused, rtol=0.05, atol=0.02)
    monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", (("cpu", None, 8),))
    assert layers._takes_explicit_path(q, 8, 0.0) and not layers._takes_explicit_path(q, 9, 0.0)


def test_vit_encoder_is_initialised_like_hugging_face_vit():
    """The reference's encoder is Hugging Face's ViTModel: LayerNorm eps 1e-12; linear and conv weights, CLS
    token and positional embedding ~ N(0, 0.02^2) (truncated), biases zero."""
    torch.manual_seed(0)
    enc = LeWM(LeWMConfig(), image_size=224, action_dim=10).encoder
    norms = [m for m in enc.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(norms) == 25 and all(m.eps == 1e-12 for m in norms)
    assert enc.cls.std().item() == pytest.approx(0.02, rel=0.2)  # 192 values, not zeros
    assert enc.pos.std().item() == pytest.approx(0.02, rel=0.03)
    for m in enc.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            assert m.weight.std().item() == pytest.approx(0.02, rel=0.05) and torch.all(m.bias == 0)
    assert ViTBlock(32, 2).norm1.eps == 1e-6  # the shared block's default (DINO-WM's predictor) is unchanged


def test_projectors_action_embedder_and_predictor_keep_pytorch_default_init():
    """As in the reference: PyTorch's default Linear init (uniform, std 1/sqrt(3 fan_in), non-zero biases),
    the predictor's positional embedding ~ N(0, 1), the AdaLN modulation zero."""
    torch.manual_seed(0)
    model = LeWM(LeWMConfig(), image_size=224, action_dim=10)
    linears = {"projector.0": model.projector[0], "projector.3": model.projector[3],
               "pred_projector.3": model.pred_projector[3], "action_embedder.mlp.2": model.action_embedder.mlp[2],
               "predictor qkv": model.predictor.blocks[0].attn.qkv, "predictor mlp": model.predictor.blocks[0].mlp[3]}
    for name, lin in linears.items():
        bound = lin.in_features ** -0.5
        assert lin.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.03), name
        assert lin.weight.abs().max().item() <= bound, name
        if lin.bias is not None:
            assert lin.bias.abs().max().item() <= bound and lin.bias.abs().max().item() > bound / 2, name
    assert model.predictor.pos.std().item() == pytest.approx(1.0, rel=0.1)
    assert all(torch.all(b.modulation[1].weight == 0) for b in model.predictor.blocks)


def test_cnn_encoder_keeps_its_truncated_normal_init():
    """The cpu profile's CNN encoder has no reference counterpart: its conv and linear weights stay N(0, 0.02^2)."""
    torch.manual_seed(0)
    enc = LeWM(LeWM.presets["cpu"], image_size=64, action_dim=10).encoder
    layers = [m for m in enc.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert len(layers) == 5
    for m in layers:
        assert m.weight.std().item() == pytest.approx(0.02, rel=0.1) and torch.all(m.bias == 0)


def test_predictor_modulations_are_each_blocks_own():
    """One product for every block's AdaLN modulation gives what each block's own modulation layer gives."""
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    pred = model.predictor
    for blk in pred.blocks:
        torch.nn.init.normal_(blk.modulation[1].weight, std=0.1)
        torch.nn.init.normal_(blk.modulation[1].bias, std=0.1)
    cond = torch.randn(2, 3, 32)
    mods = pred.modulations(cond)
    assert mods.shape == (2, 3, len(pred.blocks), 6 * 32)
    for i, blk in enumerate(pred.blocks):
        torch.testing.assert_close(mods[:, :, i], blk.modulation(cond))
    x = torch.randn(2, 3, 32)
    torch.testing.assert_close(pred(x, mods, modulated=True), pred(x, cond))


def test_a_rollout_modulates_each_action_block_once(monkeypatch):
    """A block's modulation depends on its action alone: a rollout computes it once for all the windows it is in."""
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    rows = []
    modulations = model.predictor.modulations
    monkeypatch.setattr(model.predictor, "modulations", lambda cond: rows.append(cond.shape[:2]) or modulations(cond))
    z, a = torch.randn(4, 3, 32), torch.randn(4, 2 + 5, 10)
    model.rollout(z, a)
    assert rows == [(4, 7)]
