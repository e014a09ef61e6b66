"""Issue 18: one CEM iteration's candidate rollouts (rollout_cost, bf16 autocast, random weights with the AdaLN
modulation drawn at random) for B episodes x 300 candidates, with the CPU's rows in chunks of CPU_CHUNK_TOKENS
predictor tokens (10**9: one pass), alternately in one process; and the largest difference of the costs against one
pass. Usage: python planning-chunks.py AGENT IMAGE_SIZE EPISODES [THREADS]"""
import statistics
import sys
import time

import torch

import lewm_bench.planning.base as base
from lewm_bench.provenance import git_commit
from lewm_bench.registry import get_agent

agent, size, b = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
info = get_agent(agent)
torch.manual_seed(0)
model = info.cls(info.config_for("cpu"), size, 10).eval()
for block in getattr(model.predictor, "blocks", []):
    if hasattr(block, "modulation"):  # AdaLN-zero starts as the identity
        torch.nn.init.normal_(block.modulation[1].weight, std=0.05)
n = 300
with torch.no_grad():
    z = model.encode(torch.randint(0, 256, (1, 2, 3, size, size), dtype=torch.uint8))
history, goal = z[:, :1].repeat(b * n, *[1] * (z.dim() - 1)), z[:, 1].repeat(b * n, *[1] * (z.dim() - 2))
past, plans = torch.zeros(b * n, 0, 10), torch.randn(b, n, 5, 10)
times: dict[int, list[float]] = {}
costs: dict[int, torch.Tensor] = {}
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    for _ in range(3):
        for tokens in (10**9, 4096, 2048, 1024):
            base.CPU_CHUNK_TOKENS = tokens
            start = time.perf_counter()
            costs[tokens] = base.rollout_cost(model, history, past, goal, plans)
            times.setdefault(tokens, []).append(time.perf_counter() - start)
print(f"commit {git_commit()}, torch threads {torch.get_num_threads()}, {agent} cpu architecture at {size} px")
for tokens, t in times.items():
    diff = (costs[tokens] - costs[10**9]).abs().max().item()
    print(f"{agent} {b} episodes ({b * n} rows), chunks of {tokens} tokens: median {statistics.median(t):.3f} s of "
          f"{len(t)}, speed-up {statistics.median(times[10**9]) / statistics.median(t):.2f}x; costs' largest "
          f"difference from one pass {diff:.3g}", flush=True)
