"""SAC + HER on an env's goal view, against the random-action floor (stable-baselines3, plain SB3 code).

    python examples/sac_her_two_room.py --steps 5000            # Two-Room, [256, 256], 50-step episodes
    python examples/sac_her_two_room.py --env reacher --steps 20000

Goals are drawn from the env's reset distribution (anywhere, either room in Two-Room), so this is a
harder goal set than the protocol's (goal 25 steps ahead in a dataset episode). Success: the success
test held at some step of the 50-step episode, over ``--episodes`` held-out seeds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import SAC, HerReplayBuffer

from lewm_bench.envs.goal_view import GoalView, make_goal_env


def success_rate(env: GoalView, act, episodes: int, seed: int = 1_000) -> float:
    """Fraction of episodes (seeds ``seed`` ...) in which the success test held at some step."""
    hits = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        done, hit = False, bool(info["is_success"])
        while not done and not hit:
            obs, _, terminated, truncated, info = env.step(act(obs))
            hit, done = bool(info["is_success"]), terminated or truncated
        hits.append(hit)
    return float(np.mean(hits))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="two-room")
    p.add_argument("--steps", type=int, default=5_000)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)  # small MLPs on a shared CPU: extra threads only contend
    env = make_goal_env(args.env, image_size=16)
    model = SAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs={"n_sampled_goal": 4, "goal_selection_strategy": "future"},
                learning_starts=max(min(500, args.steps // 4), 2 * env.max_episode_steps),
                policy_kwargs={"net_arch": [args.width, args.width]}, seed=args.seed, device="cpu")
    start = time.perf_counter()
    model.learn(args.steps)
    seconds = time.perf_counter() - start
    test = make_goal_env(args.env, image_size=16)
    rng = np.random.default_rng(args.seed)
    sac = success_rate(test, lambda o: model.predict(o, deterministic=True)[0], args.episodes)
    rand = success_rate(test, lambda o: rng.uniform(-1, 1, env.action_space.shape).astype(np.float32), args.episodes)
    print(f"{args.env}: SAC+HER {args.steps} env steps in {seconds:.0f} s: success {sac:.0%} "
          f"(random actions {rand:.0%}) over {args.episodes} episodes")


if __name__ == "__main__":
    main()
