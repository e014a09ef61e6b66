"""Issue 18: attention on the CPU, PyTorch's fused kernel (scaled_dot_product_attention) against the explicit products
and softmax (lewm_bench.models.layers._explicit_attention), in fp32 and bf16, at the shapes of LeWM's rollouts (300
candidates x 16 heads, 1-9 queries over 3-9 keys), the cpu-profile DINO-WM-style predictor (16-48 tokens, frame-causal
mask; chunks of 128 candidates) and the paper sizes (196-588 tokens), with freed memory reused (lewm_bench.allocator).
Medians of 20 calls after 3 warm-ups. Usage: python attention-cpu-avx512.py"""
import time

import torch
import torch.nn.functional as F

from lewm_bench.allocator import keep_freed_memory
from lewm_bench.models.layers import _explicit_attention
from lewm_bench.provenance import cpu_model, git_commit

# (batch, heads, queries, keys, head dim, mask): mask "frames" = frame-causal over frames of 16 (or 196) tokens
# (the newest queries' rows), "causal" = token-causal square, "none"
SHAPES = [(128, 4, 48, 48, 32, "frames"), (128, 4, 16, 48, 32, "frames"), (128, 4, 16, 16, 32, "none"),
          (300, 16, 3, 3, 64, "causal"), (300, 16, 1, 3, 64, "frames"), (300, 16, 9, 9, 64, "causal"),
          (64, 16, 196, 196, 64, "none"), (16, 16, 588, 588, 64, "frames"), (16, 16, 196, 588, 64, "frames"),
          (128, 12, 197, 197, 64, "none")]


def median_ms(fn, calls: int = 20) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[calls // 2] * 1e3


assert keep_freed_memory()
print(f"machine: {cpu_model()}, torch {torch.__version__}, threads {torch.get_num_threads()}, commit {git_commit()}")
torch.manual_seed(0)
for dtype in (torch.float32, torch.bfloat16):
    for b, h, nq, nk, d, kind in SHAPES:
        q, k, v = (torch.randn(b, h, n, d).to(dtype) for n in (nq, nk, nk))
        mask = None
        if kind == "frames":
            frame = torch.arange(nk) // (16 if nk < 100 else 196 if nk > 3 else 1)
            mask = (frame[:, None] >= frame[None, :])[nk - nq:]
        causal = kind == "causal"
        fused = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal))  # noqa: B023
        explicit = median_ms(lambda: _explicit_attention(q, k, v, mask, causal))  # noqa: B023
        print(f"{str(dtype)[6:]:8s} {b:3d} x {h:2d} heads, {nq:3d} queries over {nk:3d} keys, d {d}, mask {kind:6s}: "
              f"fused {fused:7.2f} ms, explicit {explicit:7.2f} ms, fused / explicit {fused / explicit:.2f}",
              flush=True)
