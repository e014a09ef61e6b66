"""A/B in one process: a paper-size LeWM planning call (CEM 300x30, top 30, horizon 5, one episode, context 1) eagerly,
with the rollouts through torch.compile computing attention over a few keys as batched matrix products, and compiled
with the broadcast form (lewm_bench.models.layers.BROADCAST_ATTENTION_DEVICES). Random weights with the AdaLN
modulations drawn at random too (lewm_bench.bench.planning.draw_zero_parameters), so that the plans depend on the
actions. Exactness: the rollout costs of one fixed set of 300 candidate plans in every mode against the eager bf16 ones
(and, for scale, eager fp32 against eager bf16), and each mode's plan's final cost (CEM amplifies any rounding
difference into another elite set within a few iterations, so the plans themselves are not compared). Usage: python
planning-compile-cpu.py ROUNDS (each round: two calls per mode, modes alternating)."""
import statistics
import sys
import time

import torch

import lewm_bench.models.layers as layers
from lewm_bench.bench.planning import draw_zero_parameters
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import machine
from lewm_bench.registry import get_agent

info = machine()
print(info["cpu"], info["cores"], "cores, torch", torch.__version__, "threads", info["torch_threads"], "commit",
      info["commit"], flush=True)
agent = get_agent("lewm")
torch.manual_seed(0)
model = agent.cls(agent.config_for("paper"), 224, 10).eval()
draw_zero_parameters(model)
frames = torch.randint(0, 256, (1, 1, 3, 224, 224), dtype=torch.uint8)
goal = torch.randint(0, 256, (1, 3, 224, 224), dtype=torch.uint8)
past = torch.zeros(1, 0, 10)


def products(*args):  # two functions: two code objects, so each mode keeps its own compiled graph
    return base.rollout_cost(*args)


def broadcast(*args):
    return base.rollout_cost(*args)


MODES = {"eager": (None, ()), "compiled, products": (torch.compile(products, dynamic=False), ()),
         "compiled, broadcast": (torch.compile(broadcast, dynamic=False), ("cpu",))}


def solve(mode):
    fn, devices = MODES[mode]
    layers.BROADCAST_ATTENTION_DEVICES = devices
    planner = CEM(PROFILES["paper"].cem)
    if fn is not None:
        base._COMPILED, planner.compile_rollouts = fn, True
    return planner.solve(model, frames, past, goal, seeds=[0])


with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
    z = model.encode(torch.cat([frames, goal[:, None]], 1))
candidates = torch.Generator().manual_seed(1)
inputs = (base.tile(z[:, :1], 300), base.tile(past, 300), base.tile(z[:, 1], 300),
          torch.randn(1, 300, 5, 10, generator=candidates))


def costs(mode, bf16=True):
    fn, devices = MODES[mode]
    layers.BROADCAST_ATTENTION_DEVICES = devices
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        return (fn or base.rollout_cost)(model, *inputs).float()


reference = costs("eager")
fp32 = costs("eager", bf16=False)
print(f"rollout costs of 300 fixed candidates: eager bf16 range [{reference.min():.4g}, {reference.max():.4g}]; "
      f"eager fp32's largest difference from it {(fp32 - reference).abs().max():.3g}", flush=True)
for mode in MODES:
    t0 = time.perf_counter()
    result = solve(mode)
    print(f"{mode}: first call {time.perf_counter() - t0:.1f} s (compiling, when compiled); costs' largest difference "
          f"from eager bf16 {(costs(mode) - reference).abs().max():.3g}; plan's final cost {result.costs[-1, 0]:.4g}",
          flush=True)
times = {mode: [] for mode in MODES}
for r in range(int(sys.argv[1])):
    for mode in MODES:
        times[mode] += [solve(mode).seconds for _ in range(2)]
    print(f"round {r + 1}: " + ", ".join(f"{m} {statistics.median(t):.3f} s" for m, t in times.items()), flush=True)
eager = statistics.median(times["eager"])
print("medians of all calls: " + ", ".join(f"{m} {statistics.median(t):.3f} s ({eager / statistics.median(t):.2f}x)"
                                          for m, t in times.items()))
