"""Issue 18: one training step (forward, loss, backward, gradient clipping, AdamW; bf16 autocast) of each world model
at the cpu profile's architecture and its own training batch, on random 64 px frames, with PyTorch's CPU dropout
(``nn.Dropout`` and attention dropout inside ``scaled_dot_product_attention``, both drawing ``bernoulli_``: before)
and with ``lewm_bench.models.layers.dropout`` (16-bit fields of 64-bit words; attention weights dropped in the explicit
products: after), alternately in one process. Medians of the rounds after the first.
Usage: python dropout-ab.py [ROUNDS]"""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from lewm_bench.models import layers
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import cpu_model, git_commit
from lewm_bench.registry import get_agent

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 9
FAST = (layers.dropout, layers._takes_short_path)


def pytorch_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    return F.dropout(x, p, training)


def old_short_path(q: torch.Tensor, keys: int, dropout: float) -> bool:  # the rule before: dropout -> SDPA
    if keys > layers.SHORT_ATTENTION_KEYS or dropout:
        return False
    return any(q.device.type == d and t in (None, q.dtype) for d, t in layers.SHORT_ATTENTION_PATHS)


MODES = {"before (PyTorch dropout)": (pytorch_dropout, old_short_path), "after (16-bit masks)": FAST}
size, action_dim = 64, 10
print(f"machine: {cpu_model()}, torch {torch.__version__}, threads "
      f"{torch.get_num_threads()}, commit {git_commit()}; {ROUNDS} rounds, medians of the last {ROUNDS - 1}")
for agent in ("lewm", "pldm", "dinowm"):
    info = get_agent(agent)
    config, batch = info.config_for("cpu"), info.train_config_for(PROFILES["cpu"]).batch_size
    torch.manual_seed(0)
    model = info.build(config, size, action_dim, "cube").train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    history = model.history
    frames = torch.randint(0, 256, (batch, history + 1, 3, size, size), dtype=torch.uint8)
    actions = torch.randn(batch, history, action_dim)
    times: dict[str, list[float]] = {m: [] for m in MODES}
    for rnd in range(ROUNDS):
        for mode, (drop, rule) in MODES.items():
            layers.dropout, layers._takes_short_path = drop, rule
            start = time.perf_counter()
            for _ in range(5):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = model.loss(frames, actions, torch.Generator().manual_seed(0)).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
            if rnd:
                times[mode].append((time.perf_counter() - start) / 5)
    layers.dropout, layers._takes_short_path = FAST
    med = {m: statistics.median(t) for m, t in times.items()}
    before, after = med.values()
    print(f"{agent:7s} batch {batch:3d}: " + ", ".join(f"{m} {t * 1e3:.1f} ms/step" for m, t in med.items())
          + f"; speed-up {before / after:.2f}x")
