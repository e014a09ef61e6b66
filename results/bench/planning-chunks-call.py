"""Issue 18: one whole one-episode DINO-WM-style planning call (cpu architecture, random weights, CEM 300 x 8), the
candidates in one pass (10**9 tokens) and in chunks of 2,048 tokens, alternately in one process (two threads)."""
import statistics

import torch

import lewm_bench.planning.base as base
from lewm_bench.bench.planning import time_calls
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

info = get_agent("dinowm")
torch.manual_seed(0)
model = info.cls(info.config_for("cpu"), 64, 10).eval()
planner = CEM(PROFILES["cpu"].cem)
times: dict[int, list[float]] = {}
for r in range(4):
    for tokens in (10**9, 2048):
        base.CPU_CHUNK_TOKENS = tokens
        times.setdefault(tokens, []).extend(
            time_calls(model, planner, 1, 64, 1, torch.device("cpu"), 3, warmup=1 if r == 0 else 0))
for tokens, t in times.items():
    print(tokens, f"median {statistics.median(t):.3f} s of {len(t)}")
