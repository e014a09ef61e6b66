"""SAC + HER training speed on an env's goal view: seconds per 1,000 env steps with gradient updates.

    python examples/sac_her_speed.py pusht      # README: PushT 28.4 s, Cube 43.6 s per 1,000 steps (AVX2, 1 thread)

500 steps fill the replay buffer (``learning_starts``), then 1,000 steps with one update each are timed,
with sac-her's settings ([256, 256], HER ``future`` with 4 goals), one torch thread.
"""

from __future__ import annotations

import argparse
import time

import torch
from stable_baselines3 import SAC, HerReplayBuffer

from lewm_bench.envs.goal_view import make_goal_env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("env", help="env name, e.g. pusht or cube")
    args = p.parse_args()
    torch.set_num_threads(1)
    env = make_goal_env(args.env, image_size=16, **({"fast_render": True} if args.env == "cube" else {}))
    model = SAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                learning_starts=500, buffer_size=10_000, policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu")
    model.learn(500)
    start = time.perf_counter()
    model.learn(1_000, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    print(f"{args.env}: {seconds:.1f} s per 1,000 env steps with updates -> {seconds * 100 / 3600:.1f} h per 100k")


if __name__ == "__main__":
    main()
