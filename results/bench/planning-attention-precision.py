"""Issue 18: rollout error of the cpu-profile LeWM and PLDM checkpoints (Cube, runs/cpu5; results/suite-cpu-avx512)
under bf16 autocast against the same rollout in fp32, with few-key attention through PyTorch's fused kernel and
through the explicit products (300 rows, 3 history frames, 5 blocks). Errors relative to the fp32 predictions' std."""
import torch

from lewm_bench.models import layers
from lewm_bench.training.checkpoint import load_world_model

PATHS = {"sdpa-bf16": (("cuda", None),), "short-bf16": (("cuda", None), ("cpu", torch.bfloat16))}
torch.manual_seed(0)
for env, agent in (("cube", "lewm"), ("cube", "pldm")):
    model = load_world_model(f"runs/cpu5/train/{env}/{agent}-cpu-seed0", env, agent, torch.device("cpu")).model.eval()
    history, actions = torch.randn(300, 3, model.embed_dim), torch.randn(300, 2 + 5, model.action_dim)
    out = {}
    with torch.no_grad():
        ref = model.rollout(history, actions)
        for name, paths in PATHS.items():
            layers.SHORT_ATTENTION_PATHS = paths
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out[name] = model.rollout(history, actions).float()
    scale = ref.std().item()
    mean = {k: f"{(v - ref).abs().mean().item() / scale:.4f}" for k, v in out.items()}
    worst = {k: f"{(v - ref).abs().max().item() / scale:.3f}" for k, v in out.items()}
    print(env, agent, f"ref std {scale:.3f}", mean, "max", worst)
