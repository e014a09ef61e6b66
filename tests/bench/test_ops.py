import pytest
import torch

from lewm_bench.bench.ops import kernel_profiling, product_flops, top_ops


@pytest.mark.parametrize("op, shapes, flops", [
    ("aten::mm", [[4, 5], [5, 6]], 2 * 4 * 5 * 6),
    ("aten::addmm", [[6], [4, 5], [5, 6], [], []], 2 * 4 * 5 * 6),
    ("aten::bmm", [[3, 4, 5], [3, 5, 6]], 2 * 3 * 4 * 5 * 6),
    ("aten::baddbmm", [[3, 4, 6], [3, 4, 5], [3, 5, 6], [], []], 2 * 3 * 4 * 5 * 6),
    ("mkldnn::_linear_pointwise", [[2, 4, 5], [6, 5], [6], [], [], []], 2 * 2 * 4 * 5 * 6),  # weight (N, K)
    ("aten::gelu", [[4, 5], []], None),
    ("aten::mm", [[], []], None),  # shapes not recorded
])
def test_product_flops_come_from_the_input_shapes(op, shapes, flops):
    assert product_flops(op, shapes) == flops


def test_top_ops_counts_a_known_product_per_run():
    a, b = torch.randn(64, 32), torch.randn(32, 48)

    def work():  # two runs of: three products and one exponential
        for _ in range(2):
            for _ in range(3):
                a @ b
            torch.exp(torch.randn(256, 256))

    prof = top_ops(work, 50, runs=2)
    rows = prof.ops
    mm = [r for r in rows if r.op == "aten::mm"]
    assert len(mm) == 1 and mm[0].shapes == "64x32, 32x48"
    assert mm[0].calls == 3 and mm[0].gflop == pytest.approx(3 * 2 * 64 * 32 * 48 / 1e9)
    assert mm[0].gflop_per_s == pytest.approx(mm[0].gflop / mm[0].self_s)
    assert any(r.op == "aten::exp" and r.calls == 1 and r.gflop is None for r in rows)
    assert [r.self_s for r in rows] == sorted((r.self_s for r in rows), reverse=True)
    assert sum(r.share for r in rows) <= 1 + 1e-9 and prof.seconds > 0 and prof.page_faults >= 0
    assert len(top_ops(work, 2).ops) == 2


def test_a_compiled_functions_fused_kernels_are_rows_when_compiled_with_kernel_profiling():
    def f(x):
        return (x.sin() + 1).relu() * 2

    x = torch.randn(512, 512)
    with kernel_profiling():
        compiled = torch.compile(f)
        compiled(x)  # compiles here
    ops = top_ops(lambda: compiled(x), 50).ops
    assert any("cpp_fused" in r.op for r in ops), [r.op for r in ops]
