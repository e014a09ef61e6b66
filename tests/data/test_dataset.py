import h5py
import numpy as np
import pytest

from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.dataset import SCHEMA_VERSION, held_out_mask, open_dataset
from lewm_bench.errors import DatasetError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=10, max_steps=40, image_size=16)
    return collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)


def test_schema_and_split(dataset):
    with open_dataset(dataset) as ds:
        n = ds.meta.num_frames
        assert ds.pixels.shape == (n, 16, 16, 3) and ds.pixels.dtype == np.uint8
        assert ds.pixels.compression == "gzip" and ds.pixels.chunks[0] >= 1
        assert ds.actions.shape == (n, 2) and ds.states.shape == (n, 2)
        np.testing.assert_array_equal(ds.episode_start, np.concatenate([[0], np.cumsum(ds.episode_length)[:-1]]))
        assert ds.held_out.sum() == 1
        train, held = ds.split_episodes("train"), ds.split_episodes("held_out")
        assert set(train) | set(held) == set(range(10)) and not set(train) & set(held)
        # stats are over the training split's real actions (NaN rows excluded)
        rows = np.concatenate([np.arange(ds.episode_start[e], ds.episode_start[e] + ds.episode_length[e] - 1)
                               for e in train])
        acts = ds.actions[:][rows]
        np.testing.assert_allclose(ds.action_mean, acts.mean(0), atol=1e-5)
        np.testing.assert_allclose(ds.action_std, acts.std(0), atol=1e-5)
        for key in ("env_id", "created", "lewm_bench_version"):
            assert ds.summary()[key if key != "env_id" else "env"]


def test_held_out_mask_is_seeded_and_sized():
    a, b = held_out_mask(100, 0.1, 0), held_out_mask(100, 0.1, 0)
    np.testing.assert_array_equal(a, b)
    assert a.sum() == 10 and held_out_mask(3, 0.1, 0).sum() == 1 and held_out_mask(5, 0.0, 0).sum() == 0


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"no such dataset; create it with: lewm-bench collect --env pusht"):
        open_dataset(tmp_path / "nope.h5", "pusht")


def test_truncated_file(dataset, tmp_path):
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(dataset.read_bytes()[:2000])
    with pytest.raises(DatasetError, match="not a readable HDF5 file") as exc:
        open_dataset(bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_newer_schema(dataset, tmp_path):
    newer = tmp_path / "newer.h5"
    newer.write_bytes(dataset.read_bytes())
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(DatasetError, match="written by a newer lewm-bench"):
        open_dataset(newer)


def test_other_env(dataset):
    with pytest.raises(DatasetError, match="holds env 'two-room', not 'cube'; collect one with: lewm-bench collect"):
        open_dataset(dataset, "cube")


def test_not_a_dataset_and_inconsistent(tmp_path, dataset):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetError, match="not a lewm-bench dataset"):
        open_dataset(other)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(dataset.read_bytes())
    with h5py.File(broken, "a") as f:
        f.attrs["num_frames"] = int(f.attrs["num_frames"]) + 1
    with pytest.raises(DatasetError, match="inconsistent dataset"):
        open_dataset(broken)
