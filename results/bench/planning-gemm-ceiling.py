"""Issue 18: how close to the machine's large-GEMM throughput can the paper-size LeWM planning call get on this CPU?
One one-episode call (CEM 300x30, context 1, 224 px, random weights, bf16 where the CPU has bf16 kernels, eager) is
recorded op by op (a TorchDispatchMode); every matrix product in it (mm, addmm, bmm, baddbmm) is then timed alone at
its own shapes and dtype (median of repeats, memory reused). The sum of those times is what the call would take if
everything but its matrix products were free; the call's FLOPs (FlopCounterMode, as `lewm-bench bench planning`)
over that time, against the 2048^3 GEMM measured in the same run, is the highest fraction the call can reach with
these kernels. Usage: python planning-gemm-ceiling.py"""
import collections
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from lewm_bench.allocator import keep_freed_memory
from lewm_bench.bench.planning import gemm_gflops
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import cpu_model, git_commit
from lewm_bench.registry import get_agent

PRODUCTS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default,
            torch.ops.aten.baddbmm.default}


class Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.products: collections.Counter = collections.Counter()
        self.ops: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket.__name__)] += 1
        if func in PRODUCTS:
            tensors = tuple((tuple(a.shape), a.dtype, tuple(a.stride())) for a in args if isinstance(a, torch.Tensor))
            self.products[(func, tensors)] += 1
        return func(*args, **(kwargs or {}))


def product_flops(func, shapes) -> float:
    if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default):
        (m, k), (_, n) = shapes[-2][0], shapes[-1][0]
        return 2.0 * m * k * n
    (b, m, k), (_, _, n) = shapes[-2][0], shapes[-1][0]
    return 2.0 * b * m * k * n


def time_product(func, shapes, repeats: int = 20) -> float:
    args = [torch.empty_strided(s, st, dtype=d).normal_() for s, d, st in shapes]
    for _ in range(3):
        func(*args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    keep_freed_memory()
    info = get_agent("lewm")
    torch.manual_seed(0)
    model = info.cls(info.config_for("paper"), 224, 10).eval()
    planner = CEM(PROFILES["paper"].cem)
    frames = torch.randint(0, 256, (1, 1, 3, 224, 224), dtype=torch.uint8)
    goal = torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8)
    past = torch.zeros(1, 0, 10)

    def call() -> float:
        return planner.solve(model, frames, past, goal, seeds=[0]).seconds

    call()
    seconds = statistics.median(call() for _ in range(3))
    counter = FlopCounterMode(display=False)
    with counter:
        call()
    flops = float(counter.get_total_flops())
    recorder = Recorder()
    with recorder:
        call()
    gemm = gemm_gflops(torch.device("cpu"), torch.bfloat16 if planner.uses_bf16(torch.device("cpu")) else torch.float32)
    rows = []
    for (func, shapes), count in recorder.products.items():
        t = time_product(func, shapes)
        f = product_flops(func, shapes)
        rows.append((count * t, count, func.overloadpacket.__name__, [s for s, _, _ in shapes], f / t / 1e9,
                     str(shapes[-1][1]).replace("torch.", "")))
    rows.sort(reverse=True)
    product_s = sum(r[0] for r in rows)
    product_flops_total = sum(count * product_flops(f, s) for (f, s), count in recorder.products.items())
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, commit {git_commit()}")
    print(f"paper LeWM call (CEM 300x30, context 1, eager): {seconds:.3f} s, {flops / 1e9:.1f} GFLOP counted, "
          f"{flops / seconds / 1e9:.0f} GFLOP/s = {flops / seconds / 1e9 / gemm:.2f} of the 2048^3 GEMM "
          f"({gemm:.0f} GFLOP/s, this run)")
    print(f"its matrix products alone, each timed at its own shapes: {product_s:.3f} s "
          f"({product_flops_total / 1e9:.1f} GFLOP, {product_flops_total / product_s / 1e9:.0f} GFLOP/s) "
          f"= {product_s / seconds:.0%} of the call")
    print(f"ceiling with everything else free: {flops / product_s / 1e9:.0f} GFLOP/s = "
          f"{flops / product_s / 1e9 / gemm:.2f} of the GEMM")
    print("largest products (total s, calls, op, shapes, GFLOP/s alone):")
    for total, count, name, shapes, rate, dtype in rows[:12]:
        print(f"  {total:7.3f} s  {count:5d} x {name:7s} {dtype} {shapes}  {rate:6.0f}")
    print("ops by calls:", ", ".join(f"{k} {v}" for k, v in recorder.ops.most_common(15)))


if __name__ == "__main__":
    main()
