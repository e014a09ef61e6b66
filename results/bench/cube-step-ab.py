"""Issue 18: Cube's physics-only step. Times what the oracle planner and the model diagnostics do with the simulator:
``simulate`` of 300 random 25-step action sequences (CEM candidates of 5 blocks x frameskip 5) from one seeded start,
and prints the tree, the median per 25-step sequence over ROUNDS passes and a digest of every final state.
Usage: python cube-step-ab.py [ROUNDS]; the tree is whichever lewm_bench is importable (sitecustomize_tree.py)."""
import hashlib
import statistics
import sys
import time

import numpy as np

import lewm_bench
from lewm_bench.envs import make_env

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
env = make_env("cube", image_size=64, fast_render=True)
env.reset(seed=0)
start = env.get_state()
actions = np.random.default_rng(0).uniform(-1, 1, (300, 25, 5))
times, digest = [], hashlib.sha256()
for r in range(rounds):
    t0 = time.perf_counter()
    finals = [env.simulate(start, seq) for seq in actions]
    times.append((time.perf_counter() - t0) / len(actions))
    if r == 0:
        for state in finals:
            digest.update(state.tobytes())
print(lewm_bench.__file__, f"median {statistics.median(times) * 1e3:.2f} ms per 25-step sequence",
      [round(t * 1e3, 2) for t in times], "states", digest.hexdigest()[:16], flush=True)
