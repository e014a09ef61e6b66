"""Issue 18: glibc's default allocator against lewm_bench.allocator.keep_freed_memory, each workload in fresh processes
alternately (the setting is per process): a cpu-profile training step (forward, loss, backward, clipping, AdamW; bf16
autocast where the CPU has bf16 kernels, as the cpu profile) of LeWM, PLDM and DINO-WM-style on random 64 px frames,
one one-episode cpu-profile planning call (CEM 300x8) of LeWM and DINO-WM-style, and one paper-size LeWM planning call
(CEM 300x30 at 224 px). Each process times its workload after warm-ups and counts its minor page faults.
Usage: python allocator-ab.py [ROUNDS]   (median over rounds of each process's median)"""
import json
import statistics
import subprocess
import sys
import time

WORKLOADS = ("train lewm", "train pldm", "train dinowm", "plan lewm cpu", "plan dinowm cpu", "plan lewm paper")


def child(mode: str, kind: str, agent: str, size: str = "cpu") -> None:
    import resource

    from lewm_bench.allocator import keep_freed_memory

    if mode == "kept":
        assert keep_freed_memory()
    import torch

    from lewm_bench.planning.cem import CEM
    from lewm_bench.profiles import PROFILES
    from lewm_bench.registry import get_agent

    info = get_agent(agent)
    torch.manual_seed(0)
    if kind == "train":
        config, batch = info.config_for("cpu"), info.train_config_for(PROFILES["cpu"]).batch_size
        model = info.build(config, 64, 10, "cube").train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-4)
        frames = torch.randint(0, 256, (batch, model.history + 1, 3, 64, 64), dtype=torch.uint8)
        actions = torch.randn(batch, model.history, 10)

        def work() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model.loss(frames, actions, torch.Generator().manual_seed(0)).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        warm, timed = 3, 6
    else:
        px = 224 if size == "paper" else 64
        model = info.cls(info.config_for(size), px, 10).eval()
        planner = CEM(PROFILES[size].cem)
        frames = torch.randint(0, 256, (1, 1, 3, px, px), dtype=torch.uint8)
        goal = torch.randint(0, 256, (1, 3, px, px), dtype=torch.uint8)

        def work() -> None:
            planner.solve(model, frames, torch.zeros(1, 0, 10), goal, seeds=[0])
        warm, timed = (1, 2) if size == "paper" else (2, 5)
    for _ in range(warm):
        work()
    faults0, times = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, []
    for _ in range(timed):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / timed
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": statistics.median(times), "faults": faults, "peak_rss_mib": rss}))


def main(rounds: int) -> None:
    from lewm_bench.provenance import cpu_model, git_commit

    print(f"machine: {cpu_model()}, commit {git_commit()}; {rounds} rounds, each a fresh process per mode, "
          "medians over rounds", flush=True)
    for workload in WORKLOADS:
        res: dict[str, list[dict]] = {"default": [], "kept": []}
        for _ in range(rounds):
            for mode in res:
                out = subprocess.run([sys.executable, __file__, "child", mode, *workload.split()], check=True,
                                     capture_output=True, text=True).stdout
                res[mode].append(json.loads(out.strip().splitlines()[-1]))
        med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in res.items()}
        d, k = med["default"], med["kept"]
        print(f"{workload:16s} default {d['seconds'] * 1e3:8.1f} ms ({d['faults']:8.0f} minor faults, peak "
              f"{d['peak_rss_mib']:6.0f} MiB)  kept {k['seconds'] * 1e3:8.1f} ms ({k['faults']:6.0f} faults, peak "
              f"{k['peak_rss_mib']:6.0f} MiB)  speed-up {d['seconds'] / k['seconds']:.2f}x", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
