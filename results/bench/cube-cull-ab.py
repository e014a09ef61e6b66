"""Cube's cpu-profile collection with whatever lewm_bench is importable: EPISODES episodes of OGBench's noisy oracle
(the cpu profile's collector, 64 px, fast_render), one process, as a collection worker runs them. Prints the tree, the
seconds per frame, and a digest of every frame and state (equal digests: the same data bytes).
Usage: python cube-cull-ab.py EPISODES (sh: cube-cull-ab.sh alternates the trees)."""
import hashlib
import sys
import time

import lewm_bench
from lewm_bench.collect.runner import CollectConfig, episode_seed, run_episode
from lewm_bench.envs import make_env
from lewm_bench.profiles import PROFILES

cfg = CollectConfig.from_profile("cube", PROFILES["cpu"])
env = make_env(cfg.env, image_size=cfg.image_size, **cfg.env_kwargs)
policy = cfg.collector.policy()
run_episode(env, policy, episode_seed(cfg.seed, 999), 10)  # the renderer and the oracle's first use
digest, frames, start = hashlib.blake2b(digest_size=8), 0, time.perf_counter()
for i in range(int(sys.argv[1])):
    ep = run_episode(env, policy, episode_seed(cfg.seed, i), cfg.max_steps)
    digest.update(ep.pixels.tobytes())
    digest.update(ep.states.tobytes())
    frames += len(ep.pixels)
seconds = time.perf_counter() - start
print(lewm_bench.__file__, f"{frames} frames, {1e3 * seconds / frames:.2f} ms a frame, digest {digest.hexdigest()}",
      flush=True)
