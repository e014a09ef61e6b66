"""FLOPs of one one-episode planning call (FlopCounterMode), LeWM paper and cpu architectures, context 1 and 3."""
import torch

import lewm_bench
from lewm_bench.bench.planning import call_flops
from lewm_bench.planning.cem import CEM
from lewm_bench.profiles import PROFILES
from lewm_bench.registry import get_agent

print(lewm_bench.__file__)
torch.set_num_threads(1)
info = get_agent("lewm")
for arch, size in (("paper", 224), ("cpu", 32)):
    for ctx in (1, 3):
        torch.manual_seed(0)
        model = info.cls(info.config_for(arch), size, 10).eval()
        f = call_flops(model, CEM(PROFILES[arch].cem), size, ctx, torch.device("cpu"))
        print(f"{arch} context {ctx}: {f/1e9:.1f} GFLOP", flush=True)
