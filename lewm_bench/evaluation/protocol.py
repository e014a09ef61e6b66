"""The evaluation protocol (SPEC §2): which start/goal pairs, what budget, what counts as success."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lewm_bench.data.dataset import OfflineDataset
from lewm_bench.errors import LewmBenchError


@dataclass(frozen=True)
class Protocol:
    name: str
    goal_offset: int
    """The goal is the frame this many env steps after the start, in the same episode."""
    budget: int
    """Env steps allowed; success counts at any step within it."""
    episodes: int = 50
    seed: int = 42
    split: str = "held_out"
    """Episodes the starts come from: ``held_out`` (ours) or ``train`` (the reference code)."""


PROTOCOLS = {
    "paper": Protocol("paper", goal_offset=25, budget=50),
    "paper-v1-two-room": Protocol("paper-v1-two-room", goal_offset=100, budget=150),
}


def paper_protocol(episodes: int) -> Protocol:
    """The paper's protocol with ``episodes`` evaluation episodes (a profile's ``eval_episodes``): what the suite
    evaluates on, and the tasks the diagnostics plan on."""
    return dataclasses.replace(PROTOCOLS["paper"], episodes=episodes)


@dataclass(frozen=True)
class Task:
    episode: int
    start: int
    """Frame index of the start within the episode."""
    goal: int
    start_state: np.ndarray
    goal_state: np.ndarray


def sample_tasks(ds: OfflineDataset, protocol: Protocol) -> list[Task]:
    """Uniform over every eligible (episode, step) of the split: steps with ``goal_offset`` steps left."""
    episodes = ds.split_episodes(protocol.split)
    eligible = [(int(e), t) for e in episodes for t in range(int(ds.episode_length[e]) - protocol.goal_offset)]
    if protocol.episodes > len(eligible):
        raise LewmBenchError(f"{ds.path}: the {protocol.split} split has {len(eligible)} start steps with "
                             f"{protocol.goal_offset} steps left, fewer than the {protocol.episodes} episodes asked "
                             "for; pass a smaller --episodes or collect more data")
    rng = np.random.default_rng(protocol.seed)
    picks = rng.choice(len(eligible), protocol.episodes, replace=False)
    tasks = []
    for i in picks:
        e, t = eligible[int(i)]
        s = int(ds.episode_start[e])
        tasks.append(Task(e, t, t + protocol.goal_offset, ds.states[s + t], ds.states[s + t + protocol.goal_offset]))
    return tasks


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
