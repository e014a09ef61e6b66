import torch

from lewm_bench.bench.planning import candidate_costs, draw_zero_parameters
from lewm_bench.models.lewm import LeWM
from lewm_bench.planning.cem import CEM, CEMConfig


def test_drawing_the_zero_parameters_makes_the_costs_depend_on_the_actions():
    """A freshly initialised LeWM predictor is the identity (AdaLN-zero), so every candidate costs the same and a
    benchmark's plans would be ties; with the zero parameters drawn the candidates' costs differ, reproducibly."""
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    planner = CEM(CEMConfig(candidates=8, iterations=1, elites=2, horizon=2, bf16=False))
    tied = candidate_costs(model, planner, 16, 1, torch.device("cpu"))
    assert torch.equal(tied, tied[:1].expand_as(tied))
    draw_zero_parameters(model)
    assert all(p.any() for p in model.parameters())
    costs = candidate_costs(model, planner, 16, 2, torch.device("cpu"))
    assert costs.shape == (8,) and len(costs.unique()) == 8
    assert torch.equal(costs, candidate_costs(model, planner, 16, 2, torch.device("cpu")))
