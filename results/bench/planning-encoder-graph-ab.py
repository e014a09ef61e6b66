"""Issue 18, on a GPU: the encoding of a planning call's frames launched from Python (before, the planner as of
7bf4bab: ``Planner._encode`` replaced by a plain ``model.encode``) or replayed as a captured CUDA graph (after, the
default), alternating in one process on paper-size LeWM calls (random weights, the AdaLN modulation drawn at random;
CEM 300 x 30, top 30, horizon 5, one episode, context 1, bf16); graphed, then with the rollouts through
``torch.compile``. Prints each mode's median call and whether the plans and cost traces on one seed are equal (the
same kernels: expected bitwise). Without CUDA both modes run eagerly (an equality check; ``--arch cpu`` for a quick
one). Usage: python planning-encoder-graph-ab.py [--rounds 5] [--calls 4] [--arch paper] [--no-compile]"""
import argparse
import statistics

import torch

from lewm_bench.bench.planning import random_world_model, time_calls
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.protocols import proprio_kwargs
from lewm_bench.provenance import default_device, device_name, git_commit


def eager_encode(self, model, frames, states):
    return model.encode(frames, **proprio_kwargs(model, states))


MODES = {"before": eager_encode, "after": base.Planner._encode}
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--calls", type=int, default=4)
ap.add_argument("--arch", default="paper", choices=["paper", "cpu"])
ap.add_argument("--no-compile", action="store_true")
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "commit", git_commit(), flush=True)
size = 224 if args.arch == "paper" else 64
cfg = PROFILES[args.arch].cem
model = random_world_model("lewm", args.arch, size, device)
frames = torch.randint(0, 256, (1, 2, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
frames = frames.to(device)
for compiled in (False, True) if not args.no_compile else (False,):
    planners = {m: CEM(cfg) for m in MODES}
    for p in planners.values():
        p.compile_rollouts = compiled
    times: dict[str, list[float]] = {m: [] for m in MODES}
    plans = {}
    for r in range(args.rounds):
        for mode, planner in planners.items():
            base.Planner._encode = MODES[mode]
            times[mode] += time_calls(model, planner, 1, size, 1, device, args.calls, warmup=2 if r == 0 else 0)
            if r == 0:
                res = planner.solve(model, frames[:, :1], torch.zeros(1, 0, 10, device=device), frames[:, 1],
                                    seeds=[0])
                plans[mode] = (res.actions, res.costs)
    base.Planner._encode = MODES["after"]
    med = {m: statistics.median(t) for m, t in times.items()}
    kind = ("graphed" if device.type == "cuda" else "eager (no CUDA: no graphs)") + (" + compiled" if compiled else "")
    print(f"lewm, {args.arch} sizes, CEM {cfg.candidates}x{cfg.iterations}, one episode, {kind}: before (encoder "
          f"launched from Python) median {med['before']:.4f} s, after (encoder graphed) {med['after']:.4f} s of "
          f"{len(times['after'])} calls each; speed-up {med['before'] / med['after']:.2f}x; plans equal "
          f"{torch.equal(plans['before'][0], plans['after'][0])}, cost traces equal "
          f"{torch.equal(plans['before'][1], plans['after'][1])}", flush=True)
