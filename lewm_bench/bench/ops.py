"""Where a call's time goes: the operations that take the longest in one profiled run of a function.

``torch.profiler`` records every operator with its input shapes; the same operator at the same shapes is one row, with
its calls, its own (self) time and that time's share of the profiled total. Matrix products also get their FLOPs from
their shapes, so the row shows the rate they run at (``gflop_per_s``), which a caller compares with the device's GEMM
throughput. On a CPU the time is the calling thread's wall time in each operator (an operator's intra-op threads work
inside it); on CUDA it is the device's kernel time.

Compiled code shows its fused kernels as rows only when inductor instruments them, which
:func:`kernel_profiling` switches on while a function compiles (C++ kernels on the CPU); otherwise they count as the
compiled graph's own time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile


@dataclass(frozen=True)
class OpTime:
    """One operator at one set of input shapes, over a profiled run."""

    op: str
    shapes: str
    """Input shapes, ``"900x192, 3072x192"`` (empty when the operator records none, e.g. a fused kernel)."""
    calls: float
    """Calls per run (see :func:`top_ops`' ``runs``)."""
    self_s: float
    """Seconds in the operator itself, summed over its calls (not counting operators it calls)."""
    share: float
    """``self_s`` over the summed self time of every operator in the run."""
    gflop: float | None
    """FLOPs of all its calls, for the matrix products :func:`product_flops` knows; None for other operators."""
    gflop_per_s: float | None


def product_flops(op: str, shapes: list[list[int]]) -> float | None:
    """FLOPs of one call of a matrix product ``op`` with input ``shapes`` (2 per multiply-add); None for others."""
    try:
        if op == "aten::mm":
            (m, k), (_, n) = shapes[:2]
            return 2.0 * m * k * n
        if op == "aten::addmm":
            (m, k), (_, n) = shapes[1:3]
            return 2.0 * m * k * n
        if op == "aten::bmm":
            (b, m, k), (_, _, n) = shapes[:2]
            return 2.0 * b * m * k * n
        if op == "aten::baddbmm":
            (b, m, k), (_, _, n) = shapes[1:3]
            return 2.0 * b * m * k * n
        if op == "mkldnn::_linear_pointwise":  # input (..., K), weight (N, K)
            x, (n, _) = shapes[:2]
            return 2.0 * math.prod(x) * n
    except (TypeError, ValueError):  # shapes not recorded as expected
        return None
    return None


@dataclass(frozen=True)
class OpProfile:
    """A profiled run: its longest operators and what the run cost in all."""

    ops: list[OpTime]
    seconds: float
    """Self time of every operator, summed (per run)."""
    page_faults: float | None
    """Minor page faults of the process per run while profiled (None where the OS does not count them). The
    profiler's own records take freed memory, so tensors allocated again may get fresh pages, which an unprofiled
    run (:func:`lewm_bench.allocator.keep_freed_memory`) does not: many faults mean its largest buffers' operators
    are slower here than unprofiled."""


def top_ops(fn: Callable[[], Any], n: int, device: torch.device | str = "cpu", runs: int = 1) -> OpProfile:
    """Run ``fn`` once under ``torch.profiler``; the ``n`` (operator, input shapes) rows with the most self time.
    ``fn`` doing ``runs`` repetitions of the same work: every figure is per repetition (calls, seconds, FLOPs, page
    faults), so that one slow repetition weighs less."""
    cuda = torch.device(device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    faults = _minor_page_faults()
    with profile(activities=activities, record_shapes=True) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize(device)
    faults = None if faults is None else (_minor_page_faults() - faults) / runs
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    groups = prof.key_averages(group_by_input_shape=True)
    total = sum(getattr(g, key) for g in groups) / 1e6 / runs
    rows = []
    for g in sorted(groups, key=lambda g: getattr(g, key), reverse=True)[:n]:
        self_s = getattr(g, key) / 1e6 / runs
        shapes = [list(s) for s in (g.input_shapes or [])]
        one = product_flops(g.key, shapes)
        gflop = None if one is None else one * g.count / runs / 1e9
        rows.append(OpTime(op=g.key, shapes=", ".join("x".join(map(str, s)) for s in shapes if s),
                           calls=g.count / runs, self_s=self_s, share=self_s / total if total else 0.0, gflop=gflop,
                           gflop_per_s=None if gflop is None or self_s == 0 else gflop / self_s))
    return OpProfile(rows, total, faults)


def _minor_page_faults() -> int | None:
    try:
        import resource
    except ImportError:  # not a POSIX system
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@contextlib.contextmanager
def kernel_profiling() -> Iterator[None]:
    """While a function compiles inside this block, inductor instruments its C++ kernels for the profiler, so that
    :func:`top_ops` lists each fused kernel (a record-function guard per kernel call: negligible against kernels of
    tens of microseconds and more)."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch({"cpp.enable_kernel_profile": True}):
        yield
