"""Median seconds of one one-episode LeWM planning call (random weights), cpu architecture + CEM, context 1 and 3."""
import statistics
import subprocess

import torch

import lewm_bench
from lewm_bench.bench.planning import time_calls
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

torch.set_num_threads(2)
info = get_agent("lewm")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        cwd=lewm_bench.__file__.rsplit("/", 2)[0]).stdout.strip()
for ctx in (1, 3):
    torch.manual_seed(0)
    model = info.cls(info.config_for("cpu"), 32, 10).eval()
    t = time_calls(model, CEM(PROFILES["cpu"].cem), 1, 32, ctx, torch.device("cpu"), 7, warmup=1)
    print(f"{commit} cpu context {ctx}: median {statistics.median(t):.3f} s (min {min(t):.3f})", flush=True)
