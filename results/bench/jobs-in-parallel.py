"""Issue 18: is a 2-core machine better used by one job on both cores or by two jobs on one core each?
A cpu-profile training step (forward, loss, backward, clipping, AdamW; bf16 autocast where the CPU has bf16 kernels, as
the cpu profile; memory reused as every lewm-bench process) of LeWM, PLDM and DINO-WM-style on random 64 px frames:
one process with 2 torch threads, then two processes with 1 thread each at the same time (as ``lewm-bench run
--executor local --max-running 2 --cpus-per-job 1``). Throughput = steps finished per second by all processes.
Usage: python jobs-in-parallel.py [ROUNDS]   (medians over rounds)"""
import json
import statistics
import subprocess
import sys
import time

AGENTS = ("lewm", "pldm", "dinowm")
STEPS = {"lewm": 20, "pldm": 20, "dinowm": 100}


def child(threads: str, agent: str) -> None:
    from lewm_bench.allocator import keep_freed_memory

    keep_freed_memory()
    import torch

    from lewm_bench.bench.train import training_step
    from lewm_bench.profiles import PROFILES
    from lewm_bench.registry import get_agent

    torch.set_num_threads(int(threads))
    train = get_agent(agent).train_config_for(PROFILES["cpu"])
    cpu = torch.device("cpu")
    step = training_step(agent, "cpu", 64, train.batch_size, train.uses_bf16(cpu), cpu, grad_clip=train.grad_clip)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(STEPS[agent]):
        step()
    print(json.dumps({"seconds_per_step": (time.perf_counter() - start) / STEPS[agent]}))


def run(threads: int, agent: str, copies: int) -> float:
    """Steps per second finished by ``copies`` processes of ``threads`` threads each, started together."""
    procs = [subprocess.Popen([sys.executable, __file__, "child", str(threads), agent], stdout=subprocess.PIPE,
                              text=True) for _ in range(copies)]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return sum(1 / json.loads(o.strip().splitlines()[-1])["seconds_per_step"] for o in outs)


def main(rounds: int) -> None:
    from lewm_bench.provenance import cpu_model, git_commit

    print(f"machine: {cpu_model()}, commit {git_commit()}; {rounds} rounds, medians", flush=True)
    for agent in AGENTS:
        one, two = [], []
        for _ in range(rounds):
            one.append(run(2, agent, 1))
            two.append(run(1, agent, 2))
        a, b = statistics.median(one), statistics.median(two)
        print(f"{agent:7s} one job x 2 threads {1e3 / a:7.1f} ms a step ({a:5.2f} steps/s)   two jobs x 1 thread "
              f"{2e3 / b:7.1f} ms a step each ({b:5.2f} steps/s together)   throughput {b / a:.2f}x", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
