"""Where one LeWM planning call's time goes on a GPU (issue 18's "profile table after").

Times, on one model with random weights at a profile's sizes (default ``paper``):
  - the whole call with the rollouts as a replayed CUDA graph (the default planner), median of ``--calls``;
  - the graph replays alone (one per CEM iteration), so ``call - iterations x replay`` is the time outside the
    rollouts (encoding the frames, itself a replayed graph, sampling, top-k, refit, Python);
and profiles one eager call and one graphed call with ``torch.profiler``: kernels per CEM iteration, summed
kernel time per iteration against wall time, and the top kernels (CUDA time). With ``--compile`` also the call
with the rollouts through ``torch.compile`` (graphed): its time, one replay, and its profile.

Usage (on a CUDA machine, lewm-bench importable): python scripts/profile_planning_gpu.py [--profile paper]
    [--calls 20] [--compile] [--shapes] [--out DIR]. Prints tables; with --out also writes profile-*.txt there.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from lewm_bench.bench.planning import random_world_model, time_calls
from lewm_bench.planning.base import CapturedCost
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="paper", choices=sorted(PROFILES))
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--compile", action="store_true", help="also time and profile the compiled rollouts")
    ap.add_argument("--shapes", action="store_true", help="also list the top ops by input shape")
    args = ap.parse_args()
    device = default_device()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    prof = PROFILES[args.profile]
    size = 224 if args.profile == "paper" else 64
    model = random_world_model("lewm", args.profile, size, device)
    cfg = prof.cem
    lines = [f"device {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
             f"profile {args.profile}, CEM {cfg.candidates}x{cfg.iterations} top{cfg.elites} h{cfg.horizon}"]

    graphed = CEM(cfg)
    planners = {"eager": _eager(cfg), "graphed": graphed}
    if args.compile:
        planners["compiled"] = CEM(cfg)
        planners["compiled"].compile_rollouts = True
    for name, planner in planners.items():
        if name == "eager":
            continue
        call = statistics.median(time_calls(model, planner, 1, size, 1, device, args.calls))
        lines.append(f"{name} call: {call * 1e3:.2f} ms median of {args.calls}")
        rollouts = [g for g in planner._graphs.values() if isinstance(g, CapturedCost)]
        if rollouts:
            replay = _replay_seconds(rollouts[-1], cfg.iterations, sync)
            outside = call - cfg.iterations * replay
            lines.append(f"one graph replay (one CEM iteration's rollouts): {replay * 1e3:.3f} ms; "
                         f"{cfg.iterations} replays {cfg.iterations * replay * 1e3:.2f} ms; outside the rollouts "
                         f"{outside * 1e3:.2f} ms ({outside / call:.0%} of the call)")
    print("\n".join(lines), flush=True)

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for name, planner in planners.items():
        time_calls(model, planner, 1, size, 1, device, 1, warmup=1)
        with profile(activities=activities, record_shapes=args.shapes) as p:
            wall = time_calls(model, planner, 1, size, 1, device, 1, warmup=0)[0]
        events = p.key_averages()
        kernels = [e for e in p.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        busy = sum(e.device_time for e in kernels) / 1e3  # ms
        sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
        table = events.table(sort_by=sort, row_limit=25, max_name_column_width=70)
        head = (f"\n=== {name} call: wall {wall * 1e3:.1f} ms (under the profiler); {len(kernels)} kernels "
                f"({len(kernels) / cfg.iterations:.0f} per CEM iteration), summed kernel time {busy:.2f} ms "
                f"({busy / cfg.iterations:.3f} ms per iteration)")
        if args.shapes:  # the matrix products by input shape: which kernels the library picked for which sizes
            table += "\n" + p.key_averages(group_by_input_shape=True).table(
                sort_by=sort, row_limit=30, max_name_column_width=40, max_shapes_column_width=90)
        print(head, flush=True)
        print(table, flush=True)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"profile-{name}.txt").write_text("\n".join(lines) + head + "\n" + table)


def _replay_seconds(graph, iterations: int, sync) -> float:
    """Median seconds of one replay of a captured rollout graph (``iterations`` replays per timing, 5 timings)."""
    plans = torch.randn_like(graph.args[0])
    for _ in range(3):
        graph(plans)
    sync()
    reps = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(iterations):
            graph(plans)
        sync()
        reps.append((time.perf_counter() - t0) / iterations)
    return statistics.median(reps)


def _eager(cfg) -> CEM:
    planner = CEM(cfg)
    planner.cuda_graphs = False
    return planner


if __name__ == "__main__":
    main()
