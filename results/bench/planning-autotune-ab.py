"""Issue 18, prepared for the next GPU lease: the compiled LeWM rollouts as shipped (``Planner.compile_rollouts``:
inductor's defaults, its GEMMs through cuBLAS/oneDNN, each a kernel of its own) against inductor's ``max-autotune``
(Triton GEMM templates tuned per shape, with the element-wise work after a product fused into it: fewer kernels per
rollout step, which is what a compiled paper call on an H100/H200 is short of; on the CPU its C++ GEMM templates).
Paper sizes (random weights, the AdaLN modulation drawn at random; CEM 300 x 30, top 30, horizon 5, one episode,
context 1, bf16 where the device has it), graphed on CUDA; the modes alternate in one process after each has compiled
(its first call's time printed: autotuning benchmarks candidate kernels). Compiled rollouts round differently, and CEM
turns that into other elites, so the modes are compared on the costs of one fixed set of 300 candidates, beside those
costs' spread. Usage: python planning-autotune-ab.py [--rounds 5] [--calls 4] [--arch paper]"""
import argparse
import statistics
import time

import torch

from lewm_bench.bench.planning import candidate_costs, random_world_model, time_calls
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device, device_name, git_commit

SHIPPED = base._compiled_rollout_cost
AUTOTUNED = torch.compile(base.rollout_cost, dynamic=False, mode="max-autotune-no-cudagraphs")


def autotuned(model, device):
    if device.type != "cpu":
        return AUTOTUNED
    from torch._inductor import config as inductor_config

    def frozen(*inputs):  # as shipped on the CPU: the weights frozen into the graph
        with inductor_config.patch(freezing=True):
            return AUTOTUNED(*inputs)

    return frozen


MODES = {"shipped": SHIPPED, "autotune": autotuned}
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--calls", type=int, default=4)
ap.add_argument("--arch", default="paper", choices=["paper", "cpu"])
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "commit", git_commit(), flush=True)
size = 224 if args.arch == "paper" else 64
cfg = PROFILES[args.arch].cem
model = random_world_model("lewm", args.arch, size, device)
planners = {m: CEM(cfg) for m in MODES}
eager = CEM(cfg)
eager.cuda_graphs = False
for p in planners.values():
    p.compile_rollouts = True
first, costs = {}, {"eager": candidate_costs(model, eager, size, 1, device)}
for mode, planner in planners.items():
    base._compiled_rollout_cost = MODES[mode]
    start = time.perf_counter()
    time_calls(model, planner, 1, size, 1, device, 1, warmup=0)
    first[mode] = time.perf_counter() - start
    costs[mode] = candidate_costs(model, planner, size, 1, device)
times: dict[str, list[float]] = {m: [] for m in MODES}
for _ in range(args.rounds):
    for mode, planner in planners.items():
        base._compiled_rollout_cost = MODES[mode]
        times[mode] += time_calls(model, planner, 1, size, 1, device, args.calls, warmup=1)
base._compiled_rollout_cost = SHIPPED
med = {m: statistics.median(t) for m, t in times.items()}
spread = float(costs["eager"].max() - costs["eager"].min())
print(f"lewm, {args.arch} sizes, CEM {cfg.candidates}x{cfg.iterations}, one episode, compiled"
      f"{' + graphed' if device.type == 'cuda' else ''}: shipped median {med['shipped']:.4f} s, autotune "
      f"{med['autotune']:.4f} s of {len(times['shipped'])} calls each; "
      f"speed-up {med['shipped'] / med['autotune']:.2f}x; "
      f"first calls (compiling) {first['shipped']:.1f} s / {first['autotune']:.1f} s; largest cost difference against "
      f"eager on fixed candidates: shipped {float((costs['shipped'] - costs['eager']).abs().max()):.4f}, autotune "
      f"{float((costs['autotune'] - costs['eager']).abs().max()):.4f} (spread of the eager costs {spread:.3f})",
      flush=True)
