"""Issue 18: DINO-WM-style training with and without the frozen-feature memo (baselines.dinov2.FrozenFeatureMemo).
Two `lewm-bench train --agent dinowm --profile cpu` runs of one env from the same dataset (and the same cached
pre-trained encoder), started together on one torch thread each, as `lewm-bench run --max-running 2 --cpus-per-job 1`
runs its jobs: "before" with the memo replaced by a plain call of the encoder (the code before the memo), "after"
as shipped. Prints each run's optimisation time (the log's epoch times) and peak memory, and whether the two final
checkpoints are bit for bit equal.
Usage: python feature-memo-ab.py ENV DATASET OUT [EPOCHS]"""
import subprocess
import sys
from pathlib import Path


def child(mode: str, env: str, data: str, out: str, epochs: str) -> None:
    import resource

    import torch

    from lewm_bench.allocator import keep_freed_memory

    keep_freed_memory()  # as every lewm-bench process
    torch.set_num_threads(1)
    if mode == "before":
        from lewm_bench.baselines.dinov2 import FrozenFeatureMemo

        FrozenFeatureMemo.__call__ = lambda self, encoder, frames, encode: encode(frames)
    from lewm_bench.cli import main

    main(["train", "--env", env, "--agent", "dinowm", "--profile", "cpu", "--data", data, "--out", out,
          "--epochs", epochs, "--force", "--no-progress"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (Path(out) / "peak_rss_mib.txt").write_text(f"{peak:.0f}\n")


def main(env: str, data: str, out: str, epochs: str = "7") -> None:
    import pandas as pd
    import torch

    from lewm_bench.provenance import cpu_model, git_commit

    print(f"machine: {cpu_model()}, commit {git_commit()}; {env}, {data}, {epochs} epochs", flush=True)
    runs = {mode: Path(out) / mode for mode in ("before", "after")}
    procs = [subprocess.Popen([sys.executable, __file__, "child", mode, env, data, str(path), epochs])
             for mode, path in runs.items()]
    assert all(p.wait() == 0 for p in procs)
    seconds = {}
    for mode, path in runs.items():
        log = pd.read_csv(path / "log.csv")
        seconds[mode] = float(log.epoch_time_s.sum())
        print(f"{mode:6s}: {seconds[mode]:7.1f} s of optimisation steps ({len(log) - 1} epochs), peak RSS "
              f"{(path / 'peak_rss_mib.txt').read_text().strip()} MiB", flush=True)
    states = [torch.load(path / "checkpoint.pt", map_location="cpu", weights_only=False) for path in runs.values()]
    states = [s.get("model", s) for s in states]
    equal = states[0].keys() == states[1].keys() and all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    print(f"speed-up {seconds['before'] / seconds['after']:.2f}x; final weights bit for bit equal: {equal}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
