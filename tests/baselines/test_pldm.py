import dataclasses

import pytest
import torch

from lewm_bench.baselines.pldm import PLDM, covariance_penalty, variance_hinge
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.models.lewm import LeWM
from lewm_bench.profiles import PROFILES
from lewm_bench.training.trainer import log_columns, train

SMOKE = PROFILES["smoke"]


def hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while len(h) < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)])
    return h


def test_variance_hinge_is_zero_at_unit_variance_and_positive_below():
    z = hadamard(16)[:, 1:]  # +-1 columns: unbiased std slightly above 1
    assert variance_hinge(z) == 0
    assert variance_hinge(0.5 * z) == pytest.approx(0.5 * (1 - (16 / 15) ** 0.5) + 0.5, abs=1e-3)
    assert variance_hinge(torch.zeros(8, 4)) == pytest.approx(1 - 1e-2, abs=1e-3)  # sqrt(eps)


def test_covariance_is_zero_for_decorrelated_input_and_positive_for_correlated():
    z = hadamard(16)[:, 1:9]  # orthogonal, zero-mean columns
    assert covariance_penalty(z) == pytest.approx(0.0, abs=1e-6)
    correlated = torch.cat([z[:, :1], z[:, :1]], 1)
    assert covariance_penalty(correlated) > 0.5
    assert covariance_penalty(torch.stack([z, correlated.repeat(1, 4)])) > 0  # batched over leading axes


def test_covariance_divides_by_the_number_of_off_diagonal_entries():
    """N = 3 samples of D = 3 columns (0, .5, 1), (.5, 0, 1), (1, .5, 0): covariances (unbiased) c01 = .125,
    c02 = -.25, c12 = -.125, so the squared off-diagonal entries sum to 2 * (.015625 + .0625 + .015625) = .1875,
    divided by D(D-1) = 6 (not by D = 3)."""
    z = torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.0, 0.5], [1.0, 1.0, 0.0]])
    assert covariance_penalty(z) == pytest.approx(0.03125)
    assert covariance_penalty(z + 7.0) == pytest.approx(0.03125)  # centred over the samples
    # about zero instead: Z^T Z / 2 has off-diagonal entries .5, .125, .25 -> 2 * (.25 + .015625 + .0625) / 6
    assert covariance_penalty(z, center=False) == pytest.approx(0.109375)


def test_each_term_on_a_hand_computed_clip_batch(monkeypatch):
    """B = 3 clips, T = 2 frames, D = 2 dims, every term worked out by hand (stable-worldmodel's formulas).

    Frame 0 over the batch: dims (0, .5, 1) and (.5, 0, 1): variances .25, .25, covariance .125.
    Frame 1 over the batch: dims (1, 2, 3) and (3, 1, 2): variances 1, 1, covariance -.5.
    Batch-centred clips (frame means (.5, .5) and (2, 2)): (-.5, 0)->(-1, 1), (0, -.5)->(0, -1), (.5, .5)->(1, 0).
    """
    z = torch.tensor([[[0.0, 0.5], [1.0, 3.0]],
                      [[0.5, 0.0], [2.0, 1.0]],
                      [[1.0, 1.0], [3.0, 2.0]]])  # (B, T, D)
    actions = torch.tensor([[[1.0, 2.0]], [[1.0, 1.0]], [[0.0, 0.0]]])  # (B, T - 1, A)
    model = PLDM(PLDM.presets["smoke"], 16, 2)
    monkeypatch.setattr(model, "encode", lambda frames: z)
    monkeypatch.setattr(model, "predict", lambda emb, act: torch.zeros_like(emb))
    head = torch.nn.Linear(4, 2)  # a known head: action = z_{t+1} - z_t from the input (z_t, z_{t+1})
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-1.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 1.0]]))
        head.bias.zero_()
    model.inverse_dynamics = head
    out = model.loss(torch.zeros(3, 2, 3, 16, 16, dtype=torch.uint8), actions)
    terms = {k: v.item() for k, v in out.terms.items()}

    assert terms["pred_loss"] == pytest.approx((1 + 9 + 4 + 1 + 9 + 4) / 6)  # predictions 0 vs frames 1
    # hinge 1 - sqrt(.25 + 1e-4) on both dims of frame 0, 0 on frame 1; mean over T x D = 4
    assert terms["variance"] == pytest.approx(2 * (1 - 0.2501 ** 0.5) / 4)
    # per frame: 2 c^2 / (D (D - 1)) = c^2: (.125^2 + .5^2) / 2
    assert terms["covariance"] == pytest.approx((0.015625 + 0.25) / 2)
    # differences (1, 2.5), (1.5, 1), (2, 1)
    assert terms["time_similarity"] == pytest.approx((1 + 6.25 + 2.25 + 1 + 4 + 1) / 6)
    # variances over the 2 centred frames: .125, .5 | 0, .125 | .125, .125 (uncentred z would give 0.1464)
    hinge = [1 - 0.1251 ** 0.5, 1 - 0.5001 ** 0.5, 1 - 0.0001 ** 0.5, 1 - 0.1251 ** 0.5, 1 - 0.1251 ** 0.5,
             1 - 0.1251 ** 0.5]
    assert terms["time_variance"] == pytest.approx(sum(hinge) / 6)
    # about zero over the 2 centred frames (divided by T - 1 = 1): off-diagonal -1, 0, .25 -> mean of squares
    assert terms["time_covariance"] == pytest.approx((1 + 0 + 0.0625) / 3)
    # head outputs (1, 2.5), (1.5, 1), (2, 1) against the actions (1, 2), (1, 1), (0, 0)
    assert terms["inverse_dynamics"] == pytest.approx((0 + 0.25 + 0.25 + 0 + 4 + 1) / 6)


def test_default_config_is_lewm_architecture_with_published_coefficients():
    cfg = PLDM.presets["paper"]
    assert (cfg.variance_weight, cfg.covariance_weight, cfg.time_similarity_weight, cfg.time_variance_weight,
            cfg.time_covariance_weight, cfg.inverse_dynamics_weight) == (18, 12, 0.2, 0.7, 0, 0)
    assert cfg.encoder == LeWM.presets["paper"].encoder and cfg.predictor == LeWM.presets["paper"].predictor
    assert cfg.sigreg_weight == 0


def test_every_term_is_reported_and_the_weights_combine_them():
    cfg = dataclasses.replace(PLDM.presets["smoke"], inverse_dynamics_weight=0.5, time_covariance_weight=0.3)
    model = PLDM(cfg, 16, 10)
    frames = torch.randint(0, 256, (6, 4, 3, 16, 16), dtype=torch.uint8)
    out = model.loss(frames, torch.randn(6, 3, 10))
    assert tuple(out.terms) == PLDM.loss_terms and len(PLDM.loss_terms) == 7
    weights = [1, 18, 12, 0.2, 0.7, 0.3, 0.5]
    torch.testing.assert_close(out.loss, sum(w * out.terms[k] for w, k in zip(weights, PLDM.loss_terms)))
    out.loss.backward()
    assert model.inverse_dynamics[0].weight.grad.abs().sum() > 0


def test_smoke_training_logs_all_seven_terms_and_optimises_the_inverse_dynamics_head(tmp_path):
    data = collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), tmp_path / "d.h5", workers=1, progress=False)
    cfg = dataclasses.replace(PLDM.presets["smoke"], inverse_dynamics_weight=1.0)
    train("two-room", SMOKE, agent="pldm", data=data, out=tmp_path / "run", progress=False, model_config=cfg)
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert header == log_columns(PLDM.loss_terms)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    torch.manual_seed(0)  # the trainer's seeding: the same initial weights
    initial = PLDM(cfg, 16, 10)
    trainable = [p for p in initial.parameters() if p.requires_grad]
    assert len(ckpt["optimizer"]["state"]) == len(trainable)  # the head's parameters are in the optimiser
    assert not torch.equal(ckpt["model"]["inverse_dynamics.0.weight"], initial.inverse_dynamics[0].weight)


def test_terms_act_along_the_documented_axes(monkeypatch):
    """Clips constant over time but varied (and decorrelated) across the batch: the batch terms are zero,
    the temporal variance hinge is at its maximum and consecutive frames are identical. The temporal
    covariance is taken about zero (the clips are not re-centred over time), so a constant +-1 clip gives
    T / (T - 1) * z z^T, whose off-diagonal entries square to (4 / 3)^2."""
    model = PLDM(PLDM.presets["smoke"], 16, 10)
    z = hadamard(64)[:, 1:33][:, None].expand(64, 4, 32).contiguous()  # (B, T, D), width 32 at smoke
    monkeypatch.setattr(model, "encode", lambda frames: z)
    terms = model.loss(torch.zeros(64, 4, 3, 16, 16, dtype=torch.uint8), torch.zeros(64, 3, 10)).terms
    assert terms["variance"] == 0 and terms["covariance"] == pytest.approx(0.0, abs=1e-6)
    assert terms["time_variance"] == pytest.approx(1 - 1e-2, abs=1e-3) and terms["time_similarity"] == 0
    assert terms["time_covariance"] == pytest.approx(16 / 9)
