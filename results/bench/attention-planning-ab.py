"""Issue 18: one-episode planning calls (random weights, CEM of the profile) with the CPU's explicit bf16 attention
limited to at most 8 keys (before: PyTorch's fused kernel above that) and over any number of keys (after), alternately
in one process with freed memory reused (lewm_bench.allocator); and the largest difference between the two plans on
the same seed. DINO-WM-style's predictor attends over 16-48 tokens at the cpu profile; LeWM's over 1-3, where nothing
changes (a control). Usage: python attention-planning-ab.py"""
import statistics

import torch

from lewm_bench.allocator import keep_freed_memory
from lewm_bench.bench.planning import time_calls
from lewm_bench.models import layers
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import device_name, git_commit
from lewm_bench.registry import get_agent

AFTER = layers.EXPLICIT_ATTENTION_PATHS
MODES = {"before (explicit up to 8 keys)": (("cuda", None, 8), ("cpu", torch.bfloat16, 8)), "after (any keys)": AFTER}
assert keep_freed_memory()
device = torch.device("cpu")
print(device_name(device), "torch threads", torch.get_num_threads(), "commit", git_commit(), flush=True)
for agent, arch, size, contexts, rounds, calls in (("dinowm", "cpu", 64, (1, 3), 4, 3), ("lewm", "cpu", 64, (1,), 4, 3),
                                                    ("lewm", "paper", 224, (1,), 2, 2)):
    info = get_agent(agent)
    torch.manual_seed(0)
    model = info.cls(info.config_for(arch), size, 10).eval()
    planner = CEM(PROFILES[arch].cem)
    for context in contexts:
        times: dict[str, list[float]] = {m: [] for m in MODES}
        plans = {}
        for r in range(rounds):
            for mode, paths in MODES.items():
                layers.EXPLICIT_ATTENTION_PATHS = paths
                times[mode] += time_calls(model, planner, 1, size, context, device, calls, warmup=1 if r == 0 else 0)
                if r == 0:
                    frames = torch.randint(0, 256, (1, context, 3, size, size), dtype=torch.uint8,
                                           generator=torch.Generator().manual_seed(1))
                    plans[mode] = planner.solve(model, frames, torch.zeros(1, context - 1, 10), frames[:, 0].flip(-1),
                                                seeds=[0]).actions
        layers.EXPLICIT_ATTENTION_PATHS = AFTER
        med = {m: statistics.median(t) for m, t in times.items()}
        before, after = med.values()
        diff = (plans[list(MODES)[0]] - plans[list(MODES)[1]]).abs().max().item()
        print(f"{agent} {arch} architecture, CEM {PROFILES[arch].cem.candidates}x{PROFILES[arch].cem.iterations}, "
              f"context {context}: " + ", ".join(f"{m} median {med[m]:.3f} s of {len(times[m])} calls" for m in MODES)
              + f"; speed-up {before / after:.2f}x; plans' largest difference {diff:.3g}", flush=True)
