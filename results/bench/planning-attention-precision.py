"""Issue 18: rollout error of the cpu-profile LeWM and PLDM checkpoints (Cube, runs/cpu5, results/suite-cpu-avx512) under
bf16 autocast against the same rollout in fp32, with few-key attention through PyTorch's fused kernel and through the
explicit products (300 rows, 3 history frames, 5 blocks). Errors relative to the fp32 predictions' std."""
import torch
import lewm_bench.models.layers as L
from lewm_bench.training.checkpoint import load_world_model
torch.manual_seed(0)
for env, agent in (("cube","lewm"),("cube","pldm")):
    m=load_world_model(f"runs/cpu5/train/{env}/{agent}-cpu-seed0", env, agent, torch.device("cpu")).model.eval()
    D=m.embed_dim; A=m.action_dim
    h=torch.randn(300,3,D); a=torch.randn(300,2+5,A)
    with torch.no_grad():
        ref=m.rollout(h,a)
        out={}
        for name,paths in (("sdpa-bf16",(("cuda",None),)),("short-bf16",(("cuda",None),("cpu",torch.bfloat16)))):
            L.SHORT_ATTENTION_PATHS=paths
            with torch.autocast("cpu",dtype=torch.bfloat16):
                out[name]=m.rollout(h,a).float()
    scale=ref.std().item()
    print(env,agent,"ref std %.3f"%scale, {k:"%.4f"%((v-ref).abs().mean().item()/scale) for k,v in out.items()}, "max", {k:"%.3f"%((v-ref).abs().max().item()/scale) for k,v in out.items()})
