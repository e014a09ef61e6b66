import numpy as np
import pandas as pd
import pytest
import torch

from lewm_bench.analysis.config import DiagnosticsConfig
from lewm_bench.analysis.diagnostics import OPEN_LOOP_COLUMNS, PLAN_COLUMNS, open_loop_error, plan_ranks, summarise
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.actions import ActionCodec
from lewm_bench.data.dataset import open_dataset
from lewm_bench.evaluation.protocol import Protocol
from lewm_bench.models.lewm import LeWM
from lewm_bench.planning.cem import CEMConfig

CONFIG = DiagnosticsConfig(clips=12, tasks=3, batch=5)


@pytest.fixture(scope="module")
def two_room(tmp_path_factory):
    path = tmp_path_factory.mktemp("diag") / "d.h5"
    return collect(CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=12, max_steps=40,
                                 image_size=16), path, workers=1, progress=False)


class Persistence:
    """Embedding = per-channel mean pixel; the rollout repeats the last embedding (predicts no motion)."""

    history = 2
    action_dim = 10

    def eval(self):
        return self

    def encode(self, frames):
        return frames.float().mean((-1, -2))

    def rollout(self, history, actions):
        steps = actions.shape[1] - (history.shape[1] - 1)
        return history[:, -1:].expand(-1, steps, -1)


def test_a_model_that_predicts_no_motion_has_exactly_the_persistence_error(two_room):
    table = open_loop_error(Persistence(), "two-room", two_room, 5, 3, CONFIG)
    assert list(table.columns) == OPEN_LOOP_COLUMNS and list(table.step) == [1, 2, 3]
    np.testing.assert_allclose(table.mse, table.persistence_mse)
    np.testing.assert_allclose(table.relative, table.persistence_relative)
    assert (table.clips == 12).all() and np.isfinite(table.relative).all() and (table.mse > 0).all()
    assert table.mse.is_monotonic_increasing  # the agent moves on: the last frame gets further from the future


def test_spearman_is_the_rank_correlation():
    from lewm_bench.analysis.diagnostics import _spearman

    assert _spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 40.0, 90.0])) == pytest.approx(1.0)
    assert _spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert np.isnan(_spearman(np.ones(3), np.arange(3.0)))


def test_diagnostics_of_a_smoke_model_are_finite_and_shaped(two_room):
    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    cem = CEMConfig(candidates=16, iterations=2, elites=4, horizon=2)
    open_loop = open_loop_error(model, "two-room", two_room, 5, cem.horizon, CONFIG)
    assert len(open_loop) == 2 and np.isfinite(open_loop[OPEN_LOOP_COLUMNS].to_numpy(float)).all()
    with open_dataset(two_room) as ds:
        codec = ActionCodec.from_dataset(ds, 5)
    plans = plan_ranks(model, "two-room", two_room, codec, cem, Protocol("t", goal_offset=10, budget=20, episodes=4),
                       CONFIG)
    assert list(plans.columns) == PLAN_COLUMNS and len(plans) == 3 and (plans.candidates == 16).all()
    assert plans.rank_fraction.between(0, 1).all() and (plans.best_candidate_distance >= 0).all()
    assert plans.spearman.dropna().between(-1, 1).all()
    summary = summarise(open_loop, plans)
    assert set(summary.quantity) == {"relative", "persistence_relative", "rank_fraction_median", "spearman_mean",
                                     "tasks"}


def test_plan_ranks_from_a_pool_of_simulators_equal_the_serial_ones(two_room, monkeypatch):
    """Past the first task's time limit the candidates are simulated by worker processes: the same table."""
    import lewm_bench.analysis.diagnostics as diagnostics

    torch.manual_seed(0)
    model = LeWM(LeWM.presets["smoke"], 16, 10).eval()
    cem = CEMConfig(candidates=16, iterations=2, elites=4, horizon=2)
    with open_dataset(two_room) as ds:
        codec = ActionCodec.from_dataset(ds, 5)
    protocol = Protocol("t", goal_offset=10, budget=20, episodes=4)
    serial = plan_ranks(model, "two-room", two_room, codec, cem, protocol, CONFIG, workers=1)
    monkeypatch.setattr(diagnostics, "POOL_AFTER_SECONDS", -1.0)  # a pool from the second task on
    started = []
    pool_class = diagnostics.ProcessPoolExecutor
    monkeypatch.setattr(diagnostics, "ProcessPoolExecutor", lambda *a, **k: started.append(a) or pool_class(*a, **k))
    pooled = plan_ranks(model, "two-room", two_room, codec, cem, protocol, CONFIG, workers=2)
    assert started == [(2,)]
    pd.testing.assert_frame_equal(pooled, serial)
