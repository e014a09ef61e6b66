"""``lewm-bench bench planning``: time one CEM planning call of a world model (default LeWM), one episode
at a time and batched.

Random weights (the time does not depend on them), with the parameters a model initialises to zero (LeWM's AdaLN-zero
modulations, through which the actions enter the predictor) also drawn at random, so that the candidates' costs
depend on their actions and the plans compared below are the optimiser's, not ties. Two architectures: the ``paper``
one with the paper's CEM (300 candidates x 30 iterations, top 30, horizon 5) at 224 px, and the current
profile's with its own CEM settings. The batched figure plans ``batch`` episodes in one call; the
speed-up is (batch x one-episode time) / batched time, both measured in this run.

Every figure has its reference measured in the same run: the one-episode call is also timed without
the rollout's reuse of known work (``kv_cache`` off: no key/value cache and no sharing of the context
frames between candidates, every token of the window recomputed at every rollout step; see
:func:`lewm_bench.models.layers.windowed_rollout`), the FLOPs of one call are counted (``FlopCounterMode``:
matrix products and attention) for both, and the machine's GEMM throughput in the planner's
precision (a 2048 x 2048 x 2048 product) gives the fraction of it the call reaches. On CUDA the call
is also timed with the rollouts run eagerly (no CUDA graph), and the plans of both are compared on
the same seeds (``graph_max_abs_diff``: the same kernels, so the same plans). With ``compile`` the call is also timed
with the rollouts through ``torch.compile``, with its own speed-up and fraction of the GEMM throughput; inductor's
kernels round differently, and CEM turns any difference into another elite set within a few iterations, so the compiled
rollout is compared on the costs of one fixed set of candidates (``compiled_cost_max_abs_diff``, beside those costs'
spread between candidates, ``cost_spread``).

With ``ops`` the benchmark also profiles two one-episode calls (and two compiled ones) and keeps the ``ops`` operators
that took the longest per call, each matrix product with its rate beside the GEMM throughput
(:func:`profile_call`, :mod:`lewm_bench.bench.ops`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from typing import Any

import torch

from lewm_bench.bench.ops import kernel_profiling, top_ops
from lewm_bench.envs import env_names
from lewm_bench.planning.base import tile
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES, Profile
from lewm_bench.provenance import default_device, device_name
from lewm_bench.registry import get_agent


def bench_planning(profile: Profile, batch: int | None = None, calls: int | None = None,
                   context: int = 1, agent: str = "lewm", compile: bool = False, ops: int = 0) -> list[dict[str, Any]]:
    """One row of figures per architecture (module docstring); ``ops`` > 0 adds ``top_ops`` (and ``compiled_top_ops``):
    :func:`profile_call`'s figures."""
    device = default_device()
    rows = []
    cases = [("paper", PROFILES["paper"], 224)]
    if profile.name != "paper":
        cases.append((profile.name, profile, min(profile.data_for(e).image_size for e in env_names())))
    for name, prof, size in cases:
        slow = name == "paper" and device.type == "cpu"
        n_calls = calls or (5 if slow else 20)
        b = batch or (4 if slow else 50)
        model = random_world_model(agent, prof.name, size, device)
        planner, eager = CEM(prof.cem), CEM(prof.cem)
        eager.cuda_graphs = False
        gemm = gemm_gflops(device, torch.bfloat16 if planner.uses_bf16(device) else torch.float32)
        reuse = hasattr(model, "kv_cache")
        if reuse:
            model.kv_cache = False
        before = time_calls(model, planner, 1, size, context, device, n_calls) if reuse else []
        flops_before = call_flops(model, eager, size, context, device) if reuse else None
        if reuse:
            model.kv_cache = True
        single = time_calls(model, planner, 1, size, context, device, n_calls)
        profiles = {"top_ops": profile_call(model, planner, size, context, device, ops, gemm)} if ops else {}
        flops = call_flops(model, eager, size, context, device)
        graphs = device.type == "cuda"
        no_graph = time_calls(model, eager, 1, size, context, device, n_calls) if graphs else []
        diff = plan_difference(model, planner, eager, size, context, device) if graphs else None
        compiled, compile_s, compiled_diff, spread = [], None, None, None
        if compile:
            fused = CEM(prof.cem)
            fused.compile_rollouts = True
            with kernel_profiling() if ops and device.type == "cpu" else contextlib.nullcontext():
                compile_s = time_calls(model, fused, 1, size, context, device, 1, warmup=0)[0]  # includes compiling
            compiled = time_calls(model, fused, 1, size, context, device, n_calls)
            if ops:
                profiles["compiled_top_ops"] = profile_call(model, fused, size, context, device, ops, gemm)
            costs = [candidate_costs(model, p, size, context, device) for p in (eager, fused)]
            compiled_diff = float((costs[1] - costs[0]).abs().max())
            spread = float(costs[0].max() - costs[0].min())
        batched = time_calls(model, planner, b, size, context, device, 2, warmup=1)
        cfg = prof.cem
        achieved = flops / statistics.median(single) / 1e9
        compiled_s = statistics.median(compiled) if compiled else None
        rows.append({"architecture": name, "image_size": size, "params": sum(p.numel() for p in model.parameters()),
                     "cem": f"{cfg.candidates}x{cfg.iterations} top{cfg.elites} h{cfg.horizon}",
                     "context": context,
                     "agent": agent, "device": device_name(device), "calls": n_calls,
                     "single_median_s": statistics.median(single),
                     "single_min_s": min(single),
                     "single_max_s": max(single), "batch": b,
                     "batched_median_s": statistics.median(batched),
                     "batched_per_episode_s": statistics.median(batched) / b,
                     "batched_speedup": b * statistics.median(single) / statistics.median(batched),
                     "precision": "bf16" if planner.uses_bf16(device) else "fp32",
                     "gflop_per_call": flops / 1e9, "gflop_per_s": achieved, "gemm_gflop_per_s": gemm,
                     "fraction_of_gemm": achieved / gemm,
                     "no_cache_median_s": statistics.median(before) if before else None,
                     "no_cache_gflop_per_call": None if flops_before is None else flops_before / 1e9,
                     "cache_speedup": statistics.median(before) / statistics.median(single) if before else None,
                     "no_graph_median_s": statistics.median(no_graph) if no_graph else None,
                     "graph_speedup": statistics.median(no_graph) / statistics.median(single) if no_graph else None,
                     "graph_max_abs_diff": diff,
                     "compiled_median_s": compiled_s,
                     "compiled_speedup": statistics.median(single) / compiled_s if compiled_s else None,
                     "compiled_fraction_of_gemm": flops / compiled_s / 1e9 / gemm if compiled_s else None,
                     "first_compiled_call_s": compile_s, "compiled_cost_max_abs_diff": compiled_diff,
                     "cost_spread": spread, **profiles})
    return rows


def profile_call(model: Any, planner: CEM, size: int, context: int, device: torch.device, n: int, gemm: float,
                 calls: int = 2) -> dict[str, Any]:
    """The ``n`` operators that take the longest in warm one-episode calls of ``planner`` (``calls`` of them profiled,
    figures per call), with a call's profiled seconds; each product's rate also as a fraction of ``gemm`` (GFLOP/s).

    A first profiled run of as many calls is thrown away: the profiler's records take the heap's free memory, so while
    it first records, the tensors freed and allocated again get fresh pages (hundreds of thousands of page faults a
    call, a paper-size product 3x slower); once the records of a run as long were freed, a second run finds memory.
    Where it still does not, ``page_faults`` (per call) says so."""
    def run() -> None:
        time_calls(model, planner, 1, size, context, device, calls, warmup=0)

    top_ops(run, n, device, runs=calls)
    prof = top_ops(run, n, device, runs=calls)
    return {"profiled_calls": calls, "profiled_s": prof.seconds, "page_faults": prof.page_faults,
            "ops": [{**dataclasses.asdict(r), "fraction_of_gemm": None if r.gflop_per_s is None
                     else r.gflop_per_s / gemm} for r in prof.ops]}


def random_world_model(agent: str, profile: str, size: int, device: torch.device) -> Any:
    """``agent``'s world model at ``profile``'s architecture for ``size`` px frames and 10-dim action blocks, in eval
    mode on ``device``: weights drawn after ``torch.manual_seed(0)``, its all-zero parameters then drawn too
    (:func:`draw_zero_parameters`), so that candidates' costs depend on their actions."""
    info = get_agent(agent)
    torch.manual_seed(0)
    model = info.cls(info.config_for(profile), size, 10).to(device).eval()
    draw_zero_parameters(model)
    return model


def draw_zero_parameters(model: torch.nn.Module, std: float = 0.02, seed: int = 0) -> None:
    """Draw every all-zero parameter of ``model`` from N(0, std^2) (in place, from its own generator)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def gemm_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """Throughput of an n x n x n matrix product in ``dtype`` on ``device`` (GFLOP/s, best of repeated timings)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b  # warm-up
    sync()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def call_flops(model: Any, planner: CEM, size: int, context: int, device: torch.device) -> float:
    """FLOPs of one one-episode planning call (matrix products and attention, as ``FlopCounterMode`` counts)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        time_calls(model, planner, 1, size, context, device, 1, warmup=0)
    return float(counter.get_total_flops())


def random_episodes(b: int, context: int, size: int, action_dim: int, device: torch.device,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs of a planning call for ``b`` episodes: random context frames (b, context, 3, size, size) and goal frames
    (b, 3, size, size), zero past actions (b, context - 1, action_dim); from ``generator`` (a CPU one) or torch's."""
    frames = torch.randint(0, 256, (b, context + 1, 3, size, size), dtype=torch.uint8, generator=generator)
    return (frames[:, :-1].to(device), torch.zeros(b, context - 1, action_dim, device=device),
            frames[:, -1].to(device))


def plan_difference(model: Any, a: CEM, b: CEM, size: int, context: int, device: torch.device) -> float:
    """Largest absolute difference between the plans of two planners on the same frames and seeds."""
    frames, past, goal = random_episodes(1, context, size, model.action_dim, device, torch.Generator().manual_seed(1))
    plans = [p.solve(model, frames, past, goal, seeds=[0]).actions for p in (a, b)]
    return float((plans[0] - plans[1]).abs().max())


def candidate_costs(model: Any, planner: CEM, size: int, context: int, device: torch.device) -> torch.Tensor:
    """Rollout costs (N,) of one fixed set of the planner's N candidate plans for one episode of random frames, through
    ``planner``'s cost function (eager, graphed or compiled) in its precision."""
    gen = torch.Generator().manual_seed(1)
    frames, past, goal = random_episodes(1, context, size, model.action_dim, device, gen)
    cfg = planner.config
    n = cfg.candidates
    plans = torch.randn(1, n, cfg.horizon, model.action_dim, generator=gen).to(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=planner.uses_bf16(device)):
        z = model.encode(torch.cat([frames, goal[:, None]], 1))
        rows = [tile(t, n) for t in (z[:, :-1], past, z[:, -1])]
        return planner.cost_function(model, *rows, tuple(plans.shape))(plans)[0].float().clone()


def time_calls(model: Any, planner: CEM, b: int, size: int, context: int, device: torch.device,
               calls: int, warmup: int = 2) -> list[float]:
    """Seconds of ``calls`` planning calls for ``b`` episodes of random frames, after ``warmup`` untimed calls."""
    frames, past, goal = random_episodes(b, context, size, model.action_dim, device)
    times = []
    for k in range(warmup + calls):
        res = planner.solve(model, frames, past, goal, seeds=list(range(b)))
        if k >= warmup:
            times.append(res.seconds)
    return times
