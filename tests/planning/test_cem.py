import pytest
import torch

from lewm_bench.bench.planning import draw_zero_parameters
from lewm_bench.models import layers
from lewm_bench.models.lewm import LeWM
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM, CEMConfig
from lewm_bench.planning.gradient import GradientConfig, GradientPlanner
from lewm_bench.registry import agents


class QuadraticModel:
    """A toy world model: the embedding is the sum of the action blocks applied so far (known answer)."""

    embed_dim = 3
    tokens_per_frame = 1
    encoder_tokens_per_frame = 1
    action_dim = 3

    def __init__(self) -> None:
        self.encode_calls = 0
        self.encoded_frames = 0

    def encode(self, frames):
        self.encode_calls += 1
        self.encoded_frames += frames.shape[0] * frames.shape[1]
        return frames.float().mean(dim=(-1, -2))  # (B, T, 3): per-channel mean

    def rollout(self, history, actions):
        h = history.shape[1]
        steps = torch.cumsum(actions[:, h - 1:], 1)
        return history[:, -1:] + steps


def _frames(b, value):
    return torch.full((b, 1, 3, 4, 4), float(value))


def test_cem_finds_the_minimum_of_a_known_quadratic_cost():
    model = QuadraticModel()
    goal = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])[:, :, None, None].expand(2, 3, 4, 4)
    cem = CEM(CEMConfig(candidates=200, iterations=15, elites=20, horizon=3))
    res = cem.solve(model, _frames(2, 0.0), torch.zeros(2, 0, 3), goal, seeds=[0, 1])
    final = res.actions.sum(1)  # the embedding after the plan
    torch.testing.assert_close(final, goal[:, :, 0, 0], atol=0.05, rtol=0)
    assert res.costs.shape == (15, 2) and torch.all(res.costs[-1] <= res.costs[0])
    assert res.seconds > 0


def test_planner_encodes_once_per_call_never_per_candidate_or_iteration():
    model = QuadraticModel()
    cem = CEM(CEMConfig(candidates=50, iterations=7, elites=5, horizon=2))
    cem.solve(model, _frames(4, 0.0), torch.zeros(4, 0, 3), torch.zeros(4, 3, 4, 4))
    assert model.encode_calls == 1 and model.encoded_frames == 4 * 2  # context + goal of 4 episodes


def test_batched_and_one_at_a_time_planning_agree():
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    draw_zero_parameters(model, std=0.1)  # AdaLN-zero starts as the identity: let the actions change the costs
    cem = CEM(CEMConfig(candidates=32, iterations=3, elites=4, horizon=2, bf16=False))
    ctx = torch.randint(0, 256, (3, 1, 3, 16, 16), dtype=torch.uint8)
    goal = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    batched = cem.solve(model, ctx, torch.zeros(3, 0, 10), goal, seeds=[5, 6, 7]).actions
    for i in range(3):
        single = cem.solve(model, ctx[i:i + 1], torch.zeros(1, 0, 10), goal[i:i + 1], seeds=[5 + i]).actions
        torch.testing.assert_close(single[0], batched[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("context", [1, 3])
def test_cpu_chunks_of_candidates_cost_what_one_pass_does(context, monkeypatch):
    """On the CPU the candidates' rollouts run in chunks of rows, which may split an episode's candidates (and a run of
    rows sharing their context frames); every cost is the one of a single pass."""
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    for block in model.predictor.blocks:  # AdaLN-zero starts as the identity: let attention matter
        torch.nn.init.normal_(block.modulation[1].weight, std=0.1)
    b, n = 3, 10
    history = base.tile(torch.randn(b, context, model.embed_dim), n)
    past = base.tile(torch.randn(b, context - 1, 10), n)
    goal, plans = base.tile(torch.randn(b, model.embed_dim), n), torch.randn(b, n, 2, 10)
    calls = []
    rollout = model.rollout
    monkeypatch.setattr(model, "rollout", lambda h, a: calls.append(len(h)) or rollout(h, a))
    with torch.no_grad():
        one_pass = base.rollout_cost(model, history, past, goal, plans)
        monkeypatch.setattr(base, "CPU_CHUNK_TOKENS", 7)
        chunked = base.rollout_cost(model, history, past, goal, plans)
    assert calls == [30, 7, 7, 7, 7, 2]
    torch.testing.assert_close(chunked, one_pass, rtol=1e-5, atol=1e-6)


def _has_inductor_compiler() -> bool:
    """Whether torch.compile's CPU backend finds its C++ compiler (``$CXX``, else g++; clang++ on macOS)."""
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception:  # noqa: BLE001 - inductor's InvalidCxxCompiler, or anything else that stops it
        return False
    return True


@pytest.mark.skipif(not _has_inductor_compiler(), reason="torch.compile on the CPU needs a C++ compiler: set CXX or "
                                                         "install g++")
@pytest.mark.parametrize("context", [1, 2])
def test_compiled_rollouts_cost_what_eager_ones_do(context, monkeypatch):
    """On the CPU ``compile_rollouts`` runs inductor's C++ kernels, with attention over a few keys as broadcast sums
    (eagerly: matrix products); the costs are the eager ones up to float rounding. In fp32, with the few-key path that
    the CPU takes in bf16 (:data:`~lewm_bench.models.layers.EXPLICIT_ATTENTION_PATHS`), for a tight comparison."""
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    draw_zero_parameters(model, std=0.1)
    b, n = 2, 6
    history = base.tile(torch.randn(b, context, model.embed_dim), n)
    past = base.tile(torch.randn(b, context - 1, 10), n)
    goal, plans = base.tile(torch.randn(b, model.embed_dim), n), torch.randn(b, n, 3, 10)
    monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", (("cpu", None, None),))
    seen = []
    broadcasts = layers._broadcasts
    monkeypatch.setattr(layers, "_broadcasts", lambda q, keys: seen.append(broadcasts(q, keys)) or seen[-1])
    planner = CEM(CEMConfig(candidates=n, iterations=1, elites=2, horizon=3, bf16=False))
    planner.compile_rollouts = True
    with torch.no_grad():
        eager = base.rollout_cost(model, history, past, goal, plans)
        assert seen and not any(seen)
        compiled = planner.cost_function(model, history, past, goal, plans.shape)(plans)
    assert any(seen)
    assert not torch.equal(compiled[:, 0], compiled[:, 1])  # the actions matter
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not _has_inductor_compiler(), reason="torch.compile on the CPU needs a C++ compiler: set CXX or "
                                                         "install g++")
def test_compiled_rollouts_follow_the_weights(monkeypatch):
    """The CPU's compiled rollouts freeze the weights into the graph: weights written in place afterwards (a
    checkpoint loaded into the model) and another model of the same architecture must still give their own costs."""
    torch.manual_seed(0)
    models = [LeWM(LeWM.presets["smoke"], 16, 10).eval() for _ in range(2)]
    for k, m in enumerate(models):
        draw_zero_parameters(m, std=0.1, seed=k)
    b, n = 1, 4
    d = models[0].embed_dim
    history, goal = base.tile(torch.randn(b, 1, d), n), base.tile(torch.randn(b, d), n)
    past, plans = torch.zeros(b * n, 0, 10), torch.randn(b, n, 3, 10)
    monkeypatch.setattr(layers, "EXPLICIT_ATTENTION_PATHS", (("cpu", None, None),))
    planner = CEM(CEMConfig(candidates=n, iterations=1, elites=2, horizon=3, bf16=False))
    planner.compile_rollouts = True

    def both(model):
        with torch.no_grad():
            return (planner.cost_function(model, history, past, goal, plans.shape)(plans),
                    base.rollout_cost(model, history, past, goal, plans))

    first, eager = both(models[0])
    torch.testing.assert_close(first, eager, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        models[0].load_state_dict({k: v * 1.5 for k, v in models[0].state_dict().items()})
    changed, eager = both(models[0])
    assert not torch.allclose(changed, first, rtol=1e-3)
    torch.testing.assert_close(changed, eager, rtol=1e-5, atol=1e-5)
    other, eager = both(models[1])
    torch.testing.assert_close(other, eager, rtol=1e-5, atol=1e-5)


def test_gradient_planner_reduces_the_cost():
    model = QuadraticModel()
    goal = torch.tensor([[1.0, 2.0, -1.0]])[:, :, None, None].expand(1, 3, 4, 4)
    res = GradientPlanner(GradientConfig(iterations=50, lr=0.1, horizon=2)).solve(
        model, _frames(1, 0.0), torch.zeros(1, 0, 3), goal)
    assert res.costs[-1, 0] < 0.01 * res.costs[0, 0]


@pytest.mark.parametrize("name", [n for n, i in agents().items()
                                  if i.kind == "world_model" and not getattr(i.cls, "uses_proprio", False)])
def test_linear_weight_copies_compute_what_autocast_computes(name):
    """Rollout costs on bf16 copies of the linear weights equal the costs under bf16 autocast on the model's own
    weights, bit for bit; a weight written in place or replaced is copied again before the next use."""
    info = agents()[name]
    torch.manual_seed(0)
    model = info.cls(info.config_for("smoke"), 16, 10).eval()
    for m in model.modules():  # AdaLN-zero blocks start as the identity: let every linear layer matter
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.2)
    history = torch.randn(12, 2, *model.encode(torch.zeros(1, 1, 3, 16, 16)).shape[2:])
    past, goal, plans = torch.randn(12, 1, 10), torch.randn_like(history[:, 0]), torch.randn(3, 4, 3, 10)
    copies = base.LinearWeightCopies(model, torch.bfloat16)
    assert copies.names and all(t.dtype == torch.bfloat16 for t in copies.copies.values())
    run = copies.bind(base.rollout_cost)

    def check() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            costs = base.rollout_cost(model, history, past, goal, plans)
            assert torch.equal(run(model, history, past, goal, plans), costs)
        return costs

    first = check()
    linear = [m for n, m in model.named_modules()  # a linear layer the rollout uses: the predictor's last
              if isinstance(m, torch.nn.Linear) and n.startswith("pred")][-1]
    with torch.no_grad():
        linear.weight.mul_(1.5)
    copies.refresh()
    assert not torch.equal(check(), first)  # the change reached the costs, through the copies too
    linear.weight = torch.nn.Parameter(linear.weight.detach() * -1)
    copies.refresh()
    check()


def test_linear_weight_copies_leave_shared_parameters_alone():
    """A weight that two modules share may be used outside a linear layer: it is not replaced by a bf16 copy."""
    a, b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    b.weight = a.weight
    copies = base.LinearWeightCopies(torch.nn.Sequential(a, b), torch.bfloat16)
    assert copies.names == ["0.bias", "1.bias"]
