"""Planners over the world-model interface: CEM (the paper's) and a gradient-based one (Adam).

:data:`PLANNERS` is the one table of planners by name; :func:`make_planner` builds one with the
budget of a CEM config, so every planner gets the same horizon and number of iterations.
"""

from __future__ import annotations

from collections.abc import Callable

from lewm_bench.errors import LewmBenchError
from lewm_bench.planning.base import Planner
from lewm_bench.planning.cem import CEM, CEMConfig
from lewm_bench.planning.gradient import GradientConfig, GradientPlanner

PLANNERS: dict[str, Callable[[CEMConfig], Planner]] = {
    "cem": CEM,
    # Adam gets the same horizon and optimisation steps as CEM's iterations
    "adam": lambda cem: GradientPlanner(GradientConfig(iterations=cem.iterations, horizon=cem.horizon)),
}


def make_planner(name: str, budget: CEMConfig) -> Planner:
    """The planner ``name`` with ``budget``'s horizon and iterations; the error lists the valid names."""
    if name not in PLANNERS:
        raise LewmBenchError(f"unknown planner {name!r}; valid planners: {', '.join(PLANNERS)}")
    return PLANNERS[name](budget)


def describe(planner: Planner) -> str:
    """One line naming the planner and its budget (the ``planner`` column of results)."""
    c = planner.config
    if isinstance(planner, CEM):
        return f"cem {c.candidates}x{c.iterations} top{c.elites} h{c.horizon}"
    if isinstance(planner, GradientPlanner):
        return f"adam {c.iterations} steps lr {c.lr} h{c.horizon}"
    return f"{type(planner).__name__} {c}"


__all__ = ["CEM", "PLANNERS", "CEMConfig", "GradientConfig", "GradientPlanner", "Planner", "describe",
           "make_planner"]
