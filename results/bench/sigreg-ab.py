"""Issue 18: one LeWM training step (forward, loss with SIGReg, backward, AdamW; bf16 autocast) at the cpu profile's
architecture and batch on 64 px frames, with SIGReg's characteristic-function sums through autograd of torch.cos /
torch.sin (before) and through their own backward that reuses the forward's values (after), alternately in one
process; and the largest difference of the parameters' gradients between the two on the same batch.
Usage: python sigreg-ab.py [THREADS]"""
import statistics
import sys
import time

import torch

from lewm_bench.models import sigreg
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import git_commit
from lewm_bench.registry import get_agent

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads())
fused = sigreg._CharacteristicSums.apply


def autograd_sums(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    arg = p.unsqueeze(-1) * t
    return torch.cos(arg).sum(1), torch.sin(arg).sum(1)


MODES = {"before (autograd)": autograd_sums, "after (own backward)": fused}
profile, info = PROFILES["cpu"], get_agent("lewm")
config, size, batch = info.config_for("cpu"), 64, PROFILES["cpu"].train.batch_size
torch.manual_seed(0)
model = info.cls(config, size, 10).train()
opt = torch.optim.AdamW(model.parameters(), lr=profile.train.lr)
frames = torch.randint(0, 256, (batch, config.history + 1, 3, size, size), dtype=torch.uint8)
actions = torch.randn(batch, config.history, 10)


def grads(step: bool) -> list[torch.Tensor]:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(frames, actions, torch.Generator().manual_seed(0)).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    out = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    if step:
        opt.step()
    return out


times: dict[str, list[float]] = {m: [] for m in MODES}
for rnd in range(13):
    for mode, fn in MODES.items():
        sigreg._CharacteristicSums.apply = fn
        start = time.perf_counter()
        grads(step=True)
        if rnd:  # the first round warms up
            times[mode].append(time.perf_counter() - start)
model.eval()  # no dropout: the same forward for the gradient comparison
g = {}
for mode, fn in MODES.items():
    sigreg._CharacteristicSums.apply = fn
    g[mode] = grads(step=False)
diff = max((a.float() - b.float()).abs().max().item() for a, b in zip(*g.values()))
scale = max(a.float().abs().max().item() for a in g["before (autograd)"])
med = {m: statistics.median(t) for m, t in times.items()}
print(f"commit {git_commit()}, torch threads {torch.get_num_threads()}, cpu-profile LeWM, batch {batch} clips of "
      f"{config.history + 1} frames at {size} px: " + ", ".join(f"{m} median {v:.3f} s of {len(times[m])} steps"
                                                             for m, v in med.items())
      + f"; speed-up {med['before (autograd)'] / med['after (own backward)']:.2f}x; gradients' largest difference "
        f"{diff:.3g} (largest gradient {scale:.3g})")
