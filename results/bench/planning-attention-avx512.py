"""Issue 18: one LeWM planning call (random weights) with attention over few keys through PyTorch's fused kernel
(before) and through the explicit products (after) on the CPU in bf16, alternately in one process; and the
largest difference between the two plans on the same seed (the AdaLN modulation drawn at random, so that
attention changes the predictions). Usage: python planning-attention-avx512.py"""
import statistics

import torch

from lewm_bench.bench.planning import time_calls
from lewm_bench.models import layers
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import device_name, git_commit
from lewm_bench.registry import get_agent

MODES = {"before (fused bf16 attention)": (("cuda", None),), "after (explicit products)": layers.SHORT_ATTENTION_PATHS}
device = torch.device("cpu")
info = get_agent("lewm")
print(device_name(device), "torch threads", torch.get_num_threads(), "commit", git_commit(), flush=True)
for arch, size, rounds in (("paper", 224, 3), ("cpu", 32, 5)):
    torch.manual_seed(0)
    model = info.cls(info.config_for(arch), size, 10).eval()
    for block in model.predictor.blocks:  # AdaLN-zero starts every block as the identity: give attention a say
        torch.nn.init.normal_(block.modulation[1].weight, std=0.05)
    planner = CEM(PROFILES[arch].cem)
    for context in (1, 3):
        times: dict[str, list[float]] = {m: [] for m in MODES}
        plans = {}
        for r in range(rounds):
            for mode, paths in MODES.items():
                layers.SHORT_ATTENTION_PATHS = paths
                times[mode] += time_calls(model, planner, 1, size, context, device, 1, warmup=1 if r == 0 else 0)
                frames = torch.zeros(1, context, 3, size, size, dtype=torch.uint8)
                if r == 0:
                    plans[mode] = planner.solve(model, frames, torch.zeros(1, context - 1, 10), frames[:, 0] + 128,
                                                seeds=[0]).actions
        layers.SHORT_ATTENTION_PATHS = MODES["after (explicit products)"]
        med = {m: statistics.median(t) for m, t in times.items()}
        b, a = med.values()
        diff = (plans[list(MODES)[0]] - plans[list(MODES)[1]]).abs().max().item()
        print(f"{arch} architecture, CEM {PROFILES[arch].cem.candidates}x{PROFILES[arch].cem.iterations}, context "
              f"{context}: " + ", ".join(f"{m} median {med[m]:.3f} s of {len(times[m])} calls" for m in MODES)
              + f"; speed-up {b / a:.2f}x; plans' largest difference {diff:.3g}", flush=True)
