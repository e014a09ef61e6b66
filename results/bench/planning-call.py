"""Time one paper-size LeWM planning call (CEM 300x30, one episode, context 1, random weights) with whatever
lewm_bench is importable; print the tree and the median. Usage: python planning-call.py CALLS [compile] (compile: the
rollouts through torch.compile, Planner.compile_rollouts; its first call, which compiles, is the untimed warm-up)."""
import statistics
import sys

import torch

import lewm_bench
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

calls = int(sys.argv[1])
info = get_agent("lewm")
torch.manual_seed(0)
model = info.cls(info.config_for("paper"), 224, 10).eval()
planner = CEM(PROFILES["paper"].cem)
compiled = sys.argv[2:] == ["compile"]
if compiled:
    planner.compile_rollouts = True
frames = torch.randint(0, 256, (1, 1, 3, 224, 224), dtype=torch.uint8)
goal = torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8)
past = torch.zeros(1, 0, 10)
ts = [planner.solve(model, frames, past, goal, seeds=[0]).seconds for _ in range(calls + 1)][1:]
precision = "bf16" if planner.uses_bf16(torch.device("cpu")) else "fp32"
mode = "compiled" if compiled else "eager"
print(lewm_bench.__file__, precision, mode, "median", round(statistics.median(ts), 3), [round(t, 2) for t in ts],
      flush=True)
