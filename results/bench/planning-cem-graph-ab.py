"""Issue 18, on a GPU: what CUDA graphs cover in a LeWM planning call, three modes alternating in one process on
paper-size calls (random weights, the AdaLN modulation drawn at random; CEM 300 x 30, top 30, horizon 5, one
episode, bf16):

  before  one graph per CEM iteration's rollouts, CEM's sampling / top-k / refit and the encoder launched from Python
          (the planner as of 7bf4bab: CEM.optimize and Planner._encode replaced by that version's);
  loop    CEM's whole loop of 30 iterations as one graph (``Planner.run_rollouts``), the encoder launched from Python;
  after   the loop and the encoding of the frames each one graph (the default since this script's commit).

Graphed, then with the rollouts through ``torch.compile`` (the same compiled function for all three). Prints each
mode's median call and every mode's plan against the first's on the same seed (the same kernels on the same noise:
expected equal). On a machine without CUDA all three run eagerly (an equality check of the refactor; ``--arch cpu``
for a quick one). Usage: python planning-cem-graph-ab.py [--rounds 5] [--calls 4] [--arch paper] [--no-compile]"""
import argparse
import statistics

import torch

from lewm_bench.bench.planning import draw_zero_parameters, time_calls
from lewm_bench.planning import base
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.protocols import proprio_kwargs
from lewm_bench.provenance import default_device, device_name, git_commit
from lewm_bench.registry import get_agent


def per_iteration_optimize(self, model, history, past_actions, goal, generators):
    """CEM.optimize as of 7bf4bab: noise drawn and rollouts replayed one iteration at a time."""
    cfg = self.config
    b, a = history.shape[0], past_actions.shape[-1]
    device = history.device
    mean = torch.zeros(b, cfg.horizon, a, device=device)
    std = torch.full((b, cfg.horizon, a), cfg.init_std, device=device)
    trace = []
    n = cfg.candidates
    history, past_actions, goal = base.tile(history, n), base.tile(past_actions, n), base.tile(goal, n)
    with torch.no_grad():
        rollout = self.cost_function(model, history, past_actions, goal, (b, n, cfg.horizon, a))
        for _ in range(cfg.iterations):
            noise = base.episode_noise(b, (cfg.candidates, cfg.horizon, a), generators, device)
            plans = mean[:, None] + std[:, None] * noise
            plans[:, 0] = mean
            cost = rollout(plans)
            best_cost, idx = cost.topk(cfg.elites, dim=1, largest=False)
            elites = plans.gather(1, idx[:, :, None, None].expand(-1, -1, cfg.horizon, a))
            mean, std = elites.mean(1), elites.std(1)
            trace.append(best_cost[:, 0])
    return mean, torch.stack(trace)


def eager_encode(self, model, frames, states):
    return model.encode(frames, **proprio_kwargs(model, states))


LOOP_OPTIMIZE, GRAPHED_ENCODE = CEM.optimize, base.Planner._encode
MODES = {"before": (per_iteration_optimize, eager_encode), "loop": (LOOP_OPTIMIZE, eager_encode),
         "after": (LOOP_OPTIMIZE, GRAPHED_ENCODE)}


def use(mode: str) -> None:
    CEM.optimize, base.Planner._encode = MODES[mode]


ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--calls", type=int, default=4)
ap.add_argument("--arch", default="paper", choices=["paper", "cpu"])
ap.add_argument("--no-compile", action="store_true")
args = ap.parse_args()
device = default_device()
print(device_name(device), "torch", torch.__version__, "commit", git_commit(), flush=True)
prof = PROFILES[args.arch]
size = 224 if args.arch == "paper" else 64
cfg = prof.cem
info = get_agent("lewm")
torch.manual_seed(0)
model = info.cls(info.config_for(args.arch), size, 10).to(device).eval()
draw_zero_parameters(model)
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
            use(mode)
            times[mode] += time_calls(model, planner, 1, size, 1, device, args.calls, warmup=2 if r == 0 else 0)
            if r == 0:
                res = planner.solve(model, frames[:, :1], torch.zeros(1, 0, 10, device=device), frames[:, 1],
                                    seeds=[0])
                plans[mode] = (res.actions, res.costs)
    use("after")
    med = {m: statistics.median(t) for m, t in times.items()}
    kind = "graphed + compiled" if compiled else "graphed"
    if device.type != "cuda":
        kind = "eager (no CUDA: no graphs)" + (", compiled" if compiled else "")
    equal = {m: (torch.equal(plans[m][0], plans["before"][0]), torch.equal(plans[m][1], plans["before"][1]),
                 float((plans[m][0] - plans["before"][0]).abs().max())) for m in MODES}
    print(f"lewm, {args.arch} sizes, CEM {cfg.candidates}x{cfg.iterations}, one episode, {kind}, medians of "
          f"{len(times['after'])} calls: " + ", ".join(f"{m} {med[m]:.4f} s" for m in MODES)
          + f"; before/loop {med['before'] / med['loop']:.2f}x, before/after {med['before'] / med['after']:.2f}x; "
          + "plans and cost traces equal to before's (largest plan difference): "
          + ", ".join(f"{m} {e[0]}/{e[1]} ({e[2]:.3g})" for m, e in equal.items() if m != "before"), flush=True)
