"""Issue 18, on a GPU: LeWM's attention over its 1-3 frame tokens as batched matrix products (before,
``BROADCAST_ATTENTION_DEVICES = ()``) or as broadcast multiplications and sums in fp32 (after, the default on CUDA),
on paper-size planning calls (random weights, the modulation drawn at random); graphed modes alternate in one process,
compiled ones run one after the other (the switch is read when the rollout is traced). Largest difference between
the two plans on the same seed. Usage: python planning-broadcast-attention-ab.py [--rounds 5] [--calls 4]"""
import argparse
import statistics

import torch

from lewm_bench.bench.planning import time_calls
from lewm_bench.models import layers
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device, device_name, git_commit
from lewm_bench.registry import get_agent

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--calls", type=int, default=4)
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "commit", git_commit(), flush=True)
cfg = PROFILES["paper"].cem
info = get_agent("lewm")
torch.manual_seed(0)
model = info.cls(info.config_for("paper"), 224, 10).to(device).eval()
for block in model.predictor.blocks:  # AdaLN-zero starts every block as the identity
    torch.nn.init.normal_(block.modulation[1].weight, std=0.05)
MODES = {"before": (), "after": layers.BROADCAST_ATTENTION_DEVICES}
for compiled in (False, True):
    planners = {m: CEM(cfg) for m in MODES}
    for p in planners.values():
        p.compile_rollouts = compiled
    times: dict[str, list[float]] = {m: [] for m in MODES}
    plans = {}
    rounds = 1 if compiled else args.rounds
    for r in range(rounds):
        for mode, planner in planners.items():
            layers.BROADCAST_ATTENTION_DEVICES = MODES[mode]
            n = args.calls * (args.rounds if compiled else 1)
            times[mode] += time_calls(model, planner, 1, 224, 1, device, n, warmup=2 if r == 0 else 0)
            if r == 0:
                frames = torch.zeros(1, 1, 3, 224, 224, dtype=torch.uint8, device=device)
                plans[mode] = planner.solve(model, frames, torch.zeros(1, 0, 10, device=device), frames[:, 0] + 128,
                                            seeds=[0]).actions
    layers.BROADCAST_ATTENTION_DEVICES = MODES["after"]
    med = {m: statistics.median(t) for m, t in times.items()}
    diff = (plans["before"] - plans["after"]).abs().max().item()
    kind = "graphed + compiled" if compiled else "graphed"
    print(f"lewm, paper sizes, CEM {cfg.candidates}x{cfg.iterations}, context 1, {kind}: "
          f"before (batched products) median {med['before']:.4f} s, after (broadcast sums) {med['after']:.4f} s of "
          f"{len(times['after'])} calls each; speed-up {med['before'] / med['after']:.2f}x; plans' largest difference "
          f"{diff:.3g}", flush=True)
