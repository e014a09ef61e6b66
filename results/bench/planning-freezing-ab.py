"""Issue 18, CPU: the paper-architecture LeWM planning call (CEM 300x30, one episode, context 1, random weights, bf16)
with its rollouts compiled as before 2026-11-27 (``torch.compile``, the weights graph inputs) or as now (inductor's
``freezing`` set around each call: ``lewm_bench.planning.base._compiled_rollout_cost``), one mode per process; each
process also times the eager call and this machine's 2048^3 bf16 GEMM, and compares the compiled costs of one fixed
set of 300 candidates with the eager ones. Run the modes alternately in fresh processes:

    for r in 1 2; do for m in before after; do python planning-freezing-ab.py $m; done; done
"""
import statistics
import sys
import time

import torch

from lewm_bench.bench.planning import call_flops, candidate_costs, gemm_gflops, time_calls
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import device_name, git_commit
from lewm_bench.registry import get_agent

mode = sys.argv[1]
if mode not in ("before", "after"):
    raise SystemExit(f"mode: expected before or after, got {mode!r}")
if mode == "before":  # (the run recorded at 624be1c set base._COMPILED; the same compiled function, unfrozen)
    plain = torch.compile(base.rollout_cost, dynamic=False)
    base._compiled_rollout_cost = lambda model, device: plain
dev = torch.device("cpu")
torch.manual_seed(0)
info = get_agent("lewm")
model = info.cls(info.config_for("paper"), 224, 10).eval()
for m in model.modules():  # AdaLN-zero starts every block as the identity
    if hasattr(m, "modulation"):
        torch.nn.init.normal_(m.modulation[1].weight, std=0.05)
cfg = PROFILES["paper"].cem
eager, compiled = CEM(cfg), CEM(cfg)
compiled.compile_rollouts = True
start = time.perf_counter()
time_calls(model, compiled, 1, 224, 1, dev, 1, warmup=0)
first = time.perf_counter() - start
costs = [candidate_costs(model, p, 224, 1, dev) for p in (eager, compiled)]
flops = call_flops(model, eager, 224, 1, dev)
te, tc = [], []
for _ in range(3):
    te += time_calls(model, eager, 1, 224, 1, dev, 2, warmup=1)
    tc += time_calls(model, compiled, 1, 224, 1, dev, 3, warmup=1)
gemm = gemm_gflops(dev, torch.bfloat16)
me, mc = statistics.median(te), statistics.median(tc)
print(f"{mode} ({device_name(dev)}, commit {git_commit()}): first compiled call {first:.1f} s; eager median {me:.3f} s "
      f"of {len(te)}, compiled {mc:.3f} s of {len(tc)} ({me / mc:.2f}x); {flops / 1e9:.1f} GFLOP a call; "
      f"GEMM {gemm:.0f} GFLOP/s; fraction of the GEMM eager {flops / me / 1e9 / gemm:.3f}, "
      f"compiled {flops / mc / 1e9 / gemm:.3f}; "
      f"compiled costs vs eager: largest difference {float((costs[1] - costs[0]).abs().max()):.4f}, spread of the "
      f"eager costs {float(costs[0].max() - costs[0].min()):.3f}", flush=True)
