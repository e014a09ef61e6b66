"""The profiler's page-fault trap (README: Benchmarks, `bench planning --ops`): a paper-size LeWM planning call
(random weights, one episode) timed unprofiled, then profiled in successive torch.profiler sessions of two calls each
(eager first, then compiled three times), with the process's minor page faults per session and the self time per
call of the largest products. Usage: python profiler-faults.py (with lewm_bench importable)."""
import resource

import torch

import lewm_bench
from lewm_bench.allocator import keep_freed_memory
from lewm_bench.bench.ops import kernel_profiling, top_ops
from lewm_bench.bench.planning import random_world_model, time_calls
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import machine

keep_freed_memory()
print(machine(), lewm_bench.__file__, flush=True)
dev = torch.device("cpu")
model = random_world_model("lewm", "paper", 224, dev)
eager, fused = CEM(PROFILES["paper"].cem), CEM(PROFILES["paper"].cem)
fused.compile_rollouts = True


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


with kernel_profiling():
    time_calls(model, fused, 1, 224, 1, dev, 1, warmup=0)
for name, planner in (("eager", eager), ("compiled", fused)):
    f = faults()
    t = time_calls(model, planner, 1, 224, 1, dev, 2)
    print(f"{name} unprofiled: calls {[round(x, 2) for x in t]} s, minor page faults {faults() - f}", flush=True)
for name, planner in (("eager", eager), ("compiled", fused), ("compiled", fused), ("compiled", fused)):
    prof = top_ops(lambda p=planner: time_calls(model, p, 1, 224, 1, dev, 2, warmup=0), 3, dev, runs=2)
    print(f"{name} profiled: {prof.seconds:.2f} s a call, minor page faults a call {prof.page_faults:,.0f}; longest: "
          + "; ".join(f"{o.op} {o.shapes} {o.self_s:.2f} s" for o in prof.ops), flush=True)
