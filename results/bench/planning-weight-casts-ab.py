"""Issue 18, on a GPU: captured rollouts that cast the model's linear weights to bf16 at every replay (before,
``cast_weights = False``) against ones that read bf16 copies refreshed once per call (after, the default:
``lewm_bench.planning.base.LinearWeightCopies``), alternately in one process on paper-size planning calls (random
weights); the largest difference between the two plans on the same seed. LeWM graphed and compiled, DINO-WM-style
graphed.

Usage: python planning-weight-casts-ab.py [--rounds 5] [--calls 4] [--agents lewm dinowm]"""
import argparse
import statistics

import torch

from lewm_bench.bench.planning import time_calls
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device, device_name, git_commit
from lewm_bench.registry import get_agent

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--calls", type=int, default=4, help="timed calls per mode per round (DINO-WM-style: 1)")
ap.add_argument("--agents", nargs="+", default=["lewm", "dinowm"])
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "commit", git_commit(), flush=True)
cfg = PROFILES["paper"].cem
for agent in args.agents:
    info = get_agent(agent)
    torch.manual_seed(0)
    model = info.cls(info.config_for("paper"), 224, 10).to(device).eval()
    for m in model.modules():  # AdaLN-zero starts every block as the identity
        if hasattr(m, "modulation"):
            torch.nn.init.normal_(m.modulation[1].weight, std=0.05)
    for compiled in (False, True) if agent == "lewm" else (False,):
        planners = {}
        for mode, cast in (("before", False), ("after", True)):
            planners[mode] = CEM(cfg)
            planners[mode].cast_weights = cast
            planners[mode].compile_rollouts = compiled
        calls = args.calls if agent == "lewm" else 1
        rounds = args.rounds if agent == "lewm" else 2
        times: dict[str, list[float]] = {m: [] for m in planners}
        plans = {}
        for r in range(rounds):
            for mode, planner in planners.items():
                times[mode] += time_calls(model, planner, 1, 224, 1, device, calls, warmup=2 if r == 0 else 0)
                if r == 0:
                    frames = torch.zeros(1, 1, 3, 224, 224, dtype=torch.uint8, device=device)
                    plans[mode] = planner.solve(model, frames, torch.zeros(1, 0, 10, device=device),
                                                frames[:, 0] + 128, seeds=[0]).actions
        med = {m: statistics.median(t) for m, t in times.items()}
        diff = (plans["before"] - plans["after"]).abs().max().item()
        print(f"{agent}, paper sizes, CEM {cfg.candidates}x{cfg.iterations}, context 1, graphed"
              f"{' + compiled' if compiled else ''}: before (casts in the graph) median {med['before']:.4f} s, after "
              f"(bf16 copies) {med['after']:.4f} s of {len(times['after'])} calls each; speed-up "
              f"{med['before'] / med['after']:.2f}x; plans' largest difference {diff:.3g}", flush=True)
