"""``lewm-bench bench planning``: time one CEM planning call of a world model (default LeWM), one episode
at a time and batched.

Random weights (the time does not depend on them). Two architectures: the ``paper`` one with the
paper's CEM (300 candidates x 30 iterations, top 30, horizon 5) at 224 px, and the current
profile's with its own CEM settings. The batched figure plans ``batch`` episodes in one call; the
speed-up is (batch x one-episode time) / batched time, both measured in this run.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from lewm_bench.envs import env_names
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES, Profile
from lewm_bench.provenance import default_device, device_name
from lewm_bench.registry import get_agent


def bench_planning(profile: Profile, batch: int | None = None, calls: int | None = None,
                   context: int = 1, agent: str = "lewm") -> list[dict[str, Any]]:
    info = get_agent(agent)
    device = default_device()
    rows = []
    cases = [("paper", PROFILES["paper"], 224)]
    if profile.name != "paper":
        cases.append((profile.name, profile, min(profile.data_for(e).image_size for e in env_names())))
    for name, prof, size in cases:
        slow = name == "paper" and device.type == "cpu"
        n_calls = calls or (5 if slow else 20)
        b = batch or (4 if slow else 50)
        torch.manual_seed(0)
        model = info.cls(info.config_for(prof.name), size, 10).to(device).eval()
        planner = CEM(prof.cem)
        single = time_calls(model, planner, 1, size, context, device, n_calls)
        batched = time_calls(model, planner, b, size, context, device, 2, warmup=1)
        cfg = prof.cem
        rows.append({"architecture": name, "image_size": size, "params": sum(p.numel() for p in model.parameters()),
                     "cem": f"{cfg.candidates}x{cfg.iterations} top{cfg.elites} h{cfg.horizon}",
                     "context": context,
                     "agent": agent, "device": device_name(device), "calls": n_calls,
                     "single_median_s": statistics.median(single),
                     "single_min_s": min(single),
                     "single_max_s": max(single), "batch": b,
                     "batched_median_s": statistics.median(batched),
                     "batched_per_episode_s": statistics.median(batched) / b,
                     "batched_speedup": b * statistics.median(single) / statistics.median(batched)})
    return rows


def time_calls(model: Any, planner: CEM, b: int, size: int, context: int, device: torch.device,
               calls: int, warmup: int = 2) -> list[float]:
    """Seconds of ``calls`` planning calls for ``b`` episodes of random frames, after ``warmup`` untimed calls."""
    frames = torch.randint(0, 256, (b, context, 3, size, size), dtype=torch.uint8, device=device)
    goal = torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, device=device)
    past = torch.zeros(b, context - 1, model.action_dim, device=device)
    times = []
    for k in range(warmup + calls):
        res = planner.solve(model, frames, past, goal, seeds=list(range(b)))
        if k >= warmup:
            times.append(res.seconds)
    return times
