"""``lewm-bench bench train``: LeWM training throughput (clips/s) per profile, fp32 vs bf16 autocast.

One optimiser step (forward, loss with SIGReg, backward, AdamW) on a synthetic batch of uint8
clips at each profile's architecture; the speed does not depend on the pixel values. The paper
architecture on a CPU is timed with a small batch (noted in the row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lewm_bench.bench.common import rate
from lewm_bench.profiles import PROFILES
from lewm_bench.provenance import default_device, device_name
from lewm_bench.registry import get_agent

# (profile, image size, batch): cpu at both of its frame sizes; paper with its batch on CUDA, 8 on CPU.
CASES = [("smoke", 16, None), ("cpu", 32, None), ("cpu", 64, None), ("paper", 224, None)]


def bench_train(profiles: list[str] | None = None, seconds: float = 3.0, agent: str = "lewm") -> list[dict[str, Any]]:
    """Training throughput (clips/s, fp32 and bf16) of ``agent`` at each case's profile and frame size."""
    device = default_device()
    rows = []
    for name, size, batch in CASES:
        if profiles and name not in profiles:
            continue
        profile = PROFILES[name]
        batch = batch or (profile.train.batch_size if device.type == "cuda" or name != "paper" else 8)
        row: dict[str, Any] = {"agent": agent, "profile": name, "image_size": size, "batch": batch,
                               "device": device_name(device)}
        for bf16 in (False, True):
            row[f"clips_per_s_{'bf16' if bf16 else 'fp32'}"] = batch * _steps_per_s(agent, profile, size, batch, bf16,
                                                                                      device, seconds)
        row["bf16_speedup"] = row["clips_per_s_bf16"] / row["clips_per_s_fp32"]
        rows.append(row)
    return rows


def _steps_per_s(agent: str, profile, size: int, batch: int, bf16: bool, device: torch.device,
                 seconds: float) -> float:
    return rate(training_step(agent, profile.name, size, batch, bf16, device), seconds, warmup=2)


def training_step(agent: str, profile: str, size: int, batch: int, bf16: bool, device: torch.device,
                  grad_clip: float | None = None) -> Callable[[], None]:
    """One optimiser step of ``agent`` at ``profile``'s architecture (forward, loss, backward, optional gradient
    clipping, AdamW at the profile's lr; bf16 autocast if ``bf16``) on a fixed synthetic batch of ``batch`` uint8
    clips of ``size`` px and 10-dim actions, seeded with 0; returns it as a function (synchronised on CUDA)."""
    info = get_agent(agent)
    torch.manual_seed(0)
    config = info.config_for(profile)
    model = info.cls(config, size, 10).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=PROFILES[profile].train.lr)
    h = config.history
    frames = torch.randint(0, 256, (batch, h + 1, 3, size, size), dtype=torch.uint8, device=device)
    actions = torch.randn(batch, h, 10, device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(frames, actions).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step
