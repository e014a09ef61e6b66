"""FLOPs of one one-episode DINO-WM-style planning call (FlopCounterMode, random weights), cpu profile."""
import subprocess

import torch

import lewm_bench
from lewm_bench.bench.planning import call_flops
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

torch.set_num_threads(1)
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                        cwd=lewm_bench.__file__.rsplit("/", 2)[0]).stdout.strip()
info = get_agent("dinowm")
for ctx in (1, 3):
    torch.manual_seed(0)
    model = info.cls(info.config_for("cpu"), 64, 10).eval()
    f = call_flops(model, CEM(PROFILES["cpu"].cem), 64, ctx, torch.device("cpu"))
    print(f"{commit} dinowm cpu context {ctx}: {f / 1e9:.1f} GFLOP", flush=True)
