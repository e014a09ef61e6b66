"""Issue 18: one cpu-profile DINO-WM-style training step (batch 32, bf16, one thread) on Cube clips, the frozen encoder
called at every step against the frozen-feature memo with every frame already kept; 3 rounds alternating in one
process; then one step's encoding of its 128 frames against the memo's lookup.
Usage: python feature-memo-step.py DATASET   (a Cube cpu-profile dataset)"""
import statistics
import sys
import time

import torch

from lewm_bench.allocator import keep_freed_memory
from lewm_bench.baselines import dinov2
from lewm_bench.data.clips import ClipDataset
from lewm_bench.registry import get_agent

keep_freed_memory()
torch.set_num_threads(1)
ds = ClipDataset(sys.argv[1], "train", 3, 5, env="cube")
info = get_agent("dinowm")
torch.manual_seed(0)
m = info.cls(info.config_for("cpu"), 64, ds[0].actions.shape[-1]).train()
params = [p for p in m.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=5e-4)
memo_call = dinov2.FrozenFeatureMemo.__call__
modes = {"plain": lambda self, encoder, frames, encode: encode(frames), "memo": memo_call}
g = torch.Generator().manual_seed(0)
batches = [torch.randint(len(ds), (32,), generator=g) for _ in range(40)]
data = [(torch.stack([ds[int(i)].frames for i in b]), torch.stack([ds[int(i)].actions for i in b])) for b in batches]


def step(frames, actions):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = m(frames, actions).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()


for f, _ in data:  # every frame into the memo
    m.encode(f)
res = {"plain": [], "memo": []}
for _ in range(3):
    for mode, call in modes.items():
        dinov2.FrozenFeatureMemo.__call__ = call
        t = time.perf_counter()
        for f, a in data:
            step(f, a)
        res[mode].append((time.perf_counter() - t) / len(data) * 1e3)
print("training step ms:", {k: [round(x, 1) for x in v] for k, v in res.items()})
dinov2.FrozenFeatureMemo.__call__ = memo_call
for name, fn in (("encode", lambda f: m._encode_frames(f.flatten(0, 1))), ("memo lookup", m.encode)):
    times = []
    for f, _ in data:
        t = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            fn(f)
        times.append(time.perf_counter() - t)
    print(f"{name}: {statistics.median(times) * 1e3:.2f} ms for 128 frames")
