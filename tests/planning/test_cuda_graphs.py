"""CUDA graphs in the planner: the replayed encoding and rollouts plan exactly as eager ones (runs only where CUDA
is)."""

import pytest
import torch

from lewm_bench.bench.planning import draw_zero_parameters
from lewm_bench.planning.base import CapturedCost
from lewm_bench.planning.cem import CEM, CEMConfig
from lewm_bench.registry import agents

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
WORLD_MODELS = [n for n, i in agents().items() if i.kind == "world_model" and not getattr(i.cls, "uses_proprio", False)]


@pytest.mark.parametrize("name", WORLD_MODELS)
@pytest.mark.parametrize("longest_context", [False, True])
def test_graphed_rollouts_plan_as_eager_ones_and_are_reused_on_new_inputs(name, longest_context):
    info = agents()[name]
    torch.manual_seed(0)
    model = info.cls(info.config_for("smoke"), 16, 10).eval()
    draw_zero_parameters(model, std=0.1)  # AdaLN-zero predictors start as the identity: no ties between candidates
    model = model.cuda()
    context = model.history if longest_context else 1
    cfg = CEMConfig(candidates=32, iterations=3, elites=4, horizon=3)
    graphed, eager = CEM(cfg), CEM(cfg)
    eager.cuda_graphs = False
    for call in range(2):  # the second call replays the graph captured in the first, on new inputs and weights
        if call:
            with torch.no_grad():  # written in place: the graph's bf16 weight copies must follow
                for p in model.parameters():
                    p.mul_(1.05)
        ctx = torch.randint(0, 256, (2, context, 3, 16, 16), dtype=torch.uint8, device="cuda")
        goal = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, device="cuda")
        past = torch.randn(2, context - 1, 10, device="cuda")
        a = graphed.solve(model, ctx, past, goal, seeds=[call, call + 7])
        b = eager.solve(model, ctx, past, goal, seeds=[call, call + 7])
        torch.testing.assert_close(a.actions, b.actions, rtol=0, atol=1e-4)
        torch.testing.assert_close(a.costs, b.costs, rtol=1e-4, atol=1e-5)
    # one graph for the frames' encoding, one for the rollouts, kept across calls
    assert len(graphed._graphs) == 2 and not eager._graphs
    rollouts = [g for g in graphed._graphs.values() if isinstance(g, CapturedCost)]
    assert len(rollouts) == 1 and rollouts[0].weights is not None  # bf16 autocast: the linear weights are copies


def test_graphed_encoding_of_frames_with_states_and_one_graphed_rollout_equal_eager_ones():
    info = agents()["dinowm-proprio"]
    torch.manual_seed(0)
    model = info.cls(info.config_for("smoke"), 16, 10, proprio=(0, 2)).eval()
    draw_zero_parameters(model, std=0.1)
    model = model.cuda()
    cfg = CEMConfig(candidates=16, iterations=2, elites=4, horizon=2)
    graphed, eager = CEM(cfg), CEM(cfg)
    eager.cuda_graphs = False
    ctx = torch.randint(0, 256, (2, 1, 3, 16, 16), dtype=torch.uint8, device="cuda")
    goal = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8, device="cuda")
    states = torch.randn(2, 2, 4, device="cuda")
    past = torch.zeros(2, 0, 10, device="cuda")
    a = graphed.solve(model, ctx, past, goal, seeds=[0, 1], states=states)
    b = eager.solve(model, ctx, past, goal, seeds=[0, 1], states=states)
    torch.testing.assert_close(a.actions, b.actions, rtol=0, atol=1e-4)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        z = model.encode(torch.cat([ctx, goal[:, None]], 1), states=states)
        rows = [t.repeat_interleave(16, 0) for t in (z[:, :-1], past, z[:, -1])]
        plans = torch.randn(2, 16, 2, 10, device="cuda")
        costs = [p.cost_function(model, *rows, tuple(plans.shape))(plans).clone() for p in (graphed, eager)]
    torch.testing.assert_close(costs[0], costs[1], rtol=1e-4, atol=1e-5)
