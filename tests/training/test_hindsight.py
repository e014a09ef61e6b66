"""Hindsight goal relabelling: literal goal rows for a fixed seed, bounds, rewards and masks."""

import pytest
import torch

from lewm_bench.training.hindsight import OGBENCH_VALUE_GOALS, GoalSampling, relabel, sample_goals

# two episodes: rows 0-3 (transitions 0, 1, 2) and rows 4-9 (transitions 5, 6, 7 used here)
ROWS = torch.tensor([0, 1, 2, 5, 6, 7])
FINAL = torch.tensor([3, 3, 3, 9, 9, 9])


def goals(sampling: GoalSampling, discount: float = 0.5, seed: int = 0) -> list[int]:
    return sample_goals(ROWS, FINAL, 10, sampling, discount, torch.Generator().manual_seed(seed)).tolist()


def test_uniform_future_goals_for_a_fixed_seed():
    # seed 0 draws random goals [4, 9, 3, 0, 3, 9], then d = [.921, .645, .791, .179, .351, .581]:
    # round(min(row + 1, final) * d + final * (1 - d)), e.g. row 5: 6 * .179 + 9 * .821 = 8.46 -> 8
    assert goals(GoalSampling()) == [1, 2, 3, 8, 8, 8]


def test_random_and_current_goals_for_a_fixed_seed():
    assert goals(GoalSampling(p_current=0.0, p_trajectory=0.0, p_random=1.0)) == [4, 9, 3, 0, 3, 9]
    assert goals(GoalSampling(p_current=1.0, p_trajectory=0.0, p_random=0.0)) == ROWS.tolist()


def test_ogbench_value_goals_and_their_rewards_for_a_fixed_seed():
    r = relabel(ROWS, FINAL, 10, OGBENCH_VALUE_GOALS, 0.5, torch.Generator().manual_seed(0))
    assert r.goals.tolist() == [1, 2, 3, 5, 6, 9]  # rows 5 and 6 drew their own frame
    assert r.rewards.tolist() == [-1, -1, -1, 0, 0, -1]
    assert r.masks.tolist() == [1, 1, 1, 0, 0, 1]


def test_geometric_goals_stay_in_their_episode_and_follow_the_discount():
    rows, final = torch.zeros(20_000, dtype=torch.long), torch.full((20_000,), 1_000)
    geo = GoalSampling(geometric=True)
    near = sample_goals(rows, final, 1_001, geo, 0.5, torch.Generator().manual_seed(1))
    assert near.min() >= 1 and abs(near.float().mean() - 2.0) < 0.05  # Geometric(0.5) has mean 2
    far = sample_goals(ROWS, FINAL, 10, geo, 0.99, torch.Generator().manual_seed(1))
    assert ((far > ROWS) & (far <= FINAL)).all()


def test_bad_input():
    with pytest.raises(ValueError, match="sum to 1"):
        GoalSampling(p_current=0.5, p_trajectory=0.6, p_random=0.0)
    with pytest.raises(ValueError, match="final rows"):
        sample_goals(ROWS, FINAL - 3, 10, GoalSampling(), 0.9, torch.Generator())
