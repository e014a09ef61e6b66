"""Issue 18: LeWM's AdaLN modulation computed per block and rollout step (before) or once per rollout for every block
and step (after, ``CausalPredictor.modulations``), alternately in one process on one paper-size planning call (random
weights, the modulation drawn at random so that it matters); the largest difference between the two plans on the same
seed. On CUDA each mode also runs with ``torch.compile`` of the rollouts (graphed in both cases).

Usage: python planning-modulation-ab.py [--rounds 3] [--contexts 1 3] [--arch paper cpu] [--compile]"""
import argparse
import statistics

import torch
import torch.nn.functional as F

from lewm_bench.bench.planning import time_calls
from lewm_bench.models.lewm import LeWM
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device, device_name, git_commit


class PerStep(LeWM):
    """The rollout before: every block's modulation computed from the conditions at every step, one product each."""

    def rollout(self, history, actions):
        from lewm_bench.models.layers import windowed_rollout

        cond = self.action_embedder(actions)
        pred = self.predictor

        def forward(x, c, past, keep):
            offset = 0 if past is None else past[0][0].shape[2]
            x = x + pred.pos[:, offset:offset + x.shape[1]]
            c = F.silu(c)
            kept = []
            for i, blk in enumerate(pred.blocks):
                x = blk(x, blk.modulation[1](c), causal=True, past=None if past is None else past[i], keep=keep,
                        queries=1 if i == len(pred.blocks) - 1 else None, modulated=True)
                if keep:
                    x, kv = x
                    kept.append(kv)
            return (pred.norm(x), kept) if keep else pred.norm(x)

        def step(span, embs, past, keep, rows):
            c = cond[:, span] if rows is None else cond[rows, span]
            out = forward(embs, c, past, keep)
            out, cache = out if keep else (out, None)
            return self.pred_projector(out), cache

        return windowed_rollout(history, actions, self.config.history, self.kv_cache, step)


ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--calls", type=int, default=1, help="timed calls per mode per round")
ap.add_argument("--contexts", type=int, nargs="+", default=[1, 3])
ap.add_argument("--arch", nargs="+", default=["paper", "cpu"])
ap.add_argument("--compile", action="store_true", help="also the compiled rollouts (CUDA)")
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "threads", torch.get_num_threads(), "commit", git_commit(),
      flush=True)
for arch in args.arch:
    size = 224 if arch == "paper" else 32
    torch.manual_seed(0)
    after = LeWM(LeWM.presets[arch], size, 10).to(device).eval()
    for block in after.predictor.blocks:  # AdaLN-zero starts every block as the identity
        torch.nn.init.normal_(block.modulation[1].weight, std=0.05)
    before = PerStep(LeWM.presets[arch], size, 10).to(device).eval()
    before.load_state_dict(after.state_dict())
    modes = {"before": before, "after": after}
    variants = [False, True] if args.compile else [False]
    for compiled in variants:
        planners = {}
        for m in modes:
            planners[m] = CEM(PROFILES[arch].cem)
            planners[m].compile_rollouts = compiled
        for context in args.contexts:
            times: dict[str, list[float]] = {m: [] for m in modes}
            plans = {}
            for r in range(args.rounds):
                for m, model in modes.items():
                    times[m] += time_calls(model, planners[m], 1, size, context, device, args.calls,
                                           warmup=2 if r == 0 else 0)
                    if r == 0:
                        frames = torch.zeros(1, context, 3, size, size, dtype=torch.uint8, device=device)
                        plans[m] = planners[m].solve(model, frames, torch.zeros(1, context - 1, 10, device=device),
                                                     frames[:, 0] + 128, seeds=[0]).actions
            med = {m: statistics.median(t) for m, t in times.items()}
            diff = (plans["before"] - plans["after"]).abs().max().item()
            print(f"{arch} architecture, CEM {PROFILES[arch].cem.candidates}x{PROFILES[arch].cem.iterations}, context "
                  f"{context}{', compiled' if compiled else ''}: before (per block per step) median "
                  f"{med['before']:.4f} s, after (one product per step) {med['after']:.4f} s of {len(times['after'])} "
                  f"calls each; speed-up {med['before'] / med['after']:.2f}x; plans' largest difference {diff:.3g}",
                  flush=True)
