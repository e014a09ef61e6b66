"""Hindsight goal relabelling for goal-conditioned policies (OGBench's ``GCDataset``, in PyTorch).

The reward-free data has no goals: every training transition gets goals drawn from the data itself.
A *row* is one frame of a table of frames laid out episode after episode (for the policies: every
``frameskip``-th frame, so one row step is one decision). For a transition at row ``i`` whose
episode ends at row ``final[i]`` a goal is, with the probabilities of :class:`GoalSampling`,

- the current frame (``i``): the value learns that a reached goal is worth 0;
- a later frame of the same episode (``i + k`` capped at ``final[i]``; ``k`` geometric with success
  probability ``1 - discount`` when ``geometric``, else uniform between ``i + 1`` and ``final[i]``);
- a random frame of any episode (``randint(rows)``).

Reward and mask follow OGBench's ``gc_negative`` convention: reward 0 and mask 0 (no bootstrapping)
when the goal is the current frame, else reward -1 and mask 1 — the value is minus the discounted
number of decisions to the goal.

Source: github.com/seohongpark/ogbench, ``impls/utils/datasets.py`` (``GCDataset.sample_goals``,
``GCDataset.sample``) and the agents' ``get_config`` (fractions, discount); the numbers are theirs,
this code is ours. The random draws are made in a fixed order (random goals, offsets, the
trajectory/random choice, the current-frame choice) from one ``torch.Generator``, so a seed gives
the same goals on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass(frozen=True)
class GoalSampling:
    """Where the goals of one loss (actor or value) come from; the three fractions sum to 1.

    Defaults: OGBench's actor goals (``actor_p_curgoal=0``, ``actor_p_trajgoal=1``, ``actor_p_randomgoal=0``,
    ``actor_geom_sample=False``); :data:`OGBENCH_VALUE_GOALS` holds its value goals.
    """

    p_current: float = 0.0
    """Fraction of goals that are the transition's own frame."""
    p_trajectory: float = 1.0
    """Fraction of goals from later in the same episode."""
    p_random: float = 0.0
    """Fraction of goals drawn uniformly from every frame of the data."""
    geometric: bool = False
    """Trajectory goals ``k`` rows ahead with ``k ~ Geometric(1 - discount)`` (True) or uniform up to the
    episode's last frame (False)."""

    def __post_init__(self) -> None:
        ps = (self.p_current, self.p_trajectory, self.p_random)
        if min(ps) < 0 or abs(sum(ps) - 1.0) > 1e-6:
            raise ValueError(f"goal fractions must be >= 0 and sum to 1; got current {self.p_current}, trajectory "
                             f"{self.p_trajectory}, random {self.p_random}")


OGBENCH_VALUE_GOALS = GoalSampling(p_current=0.2, p_trajectory=0.5, p_random=0.3, geometric=True)
"""OGBench's value goals for GCIVL and GCIQL (``value_p_curgoal=0.2``, ``value_p_trajgoal=0.5``,
``value_p_randomgoal=0.3``, ``value_geom_sample=True``)."""


class Relabelled(NamedTuple):
    """Goal rows and the reward and mask they imply."""

    goals: Tensor
    """(B,) int64 goal rows."""
    rewards: Tensor
    """(B,) float32: 0 where the goal is the current frame, else -1."""
    masks: Tensor
    """(B,) float32: 0 where the goal is the current frame (the episode ends there), else 1."""


def sample_goals(rows: Tensor, final: Tensor, num_rows: int, sampling: GoalSampling, discount: float,
                 generator: torch.Generator) -> Tensor:
    """Goal rows for transitions at ``rows`` whose episodes end at rows ``final`` (both (B,) int64, on CPU).

    Trajectory goals never precede ``rows + 1`` unless the row is its episode's last; they never pass ``final``.
    """
    if rows.shape != final.shape or (final < rows).any():
        raise ValueError(f"final rows must match rows and lie at or after them; got shapes {tuple(rows.shape)} and "
                         f"{tuple(final.shape)}")
    n = len(rows)
    random_goals = torch.randint(num_rows, (n,), generator=generator)
    if sampling.geometric:
        offsets = torch.empty(n, dtype=torch.float64).geometric_(1.0 - discount, generator=generator).long()  # >= 1
        trajectory = torch.minimum(rows + offsets, final)
    else:
        d = torch.rand(n, generator=generator, dtype=torch.float64)  # in [0, 1)
        trajectory = torch.round(torch.minimum(rows + 1, final) * d + final * (1 - d)).long()
    if sampling.p_current == 1.0:
        return rows.clone()
    p_traj = sampling.p_trajectory / (1.0 - sampling.p_current)
    goals = torch.where(torch.rand(n, generator=generator) < p_traj, trajectory, random_goals)
    return torch.where(torch.rand(n, generator=generator) < sampling.p_current, rows, goals)


def relabel(rows: Tensor, final: Tensor, num_rows: int, sampling: GoalSampling, discount: float,
            generator: torch.Generator) -> Relabelled:
    """:func:`sample_goals` with OGBench's ``gc_negative`` reward and mask (module docstring)."""
    goals = sample_goals(rows, final, num_rows, sampling, discount, generator)
    reached = (goals == rows).float()
    return Relabelled(goals, reached - 1.0, 1.0 - reached)
