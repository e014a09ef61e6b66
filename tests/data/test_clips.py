import numpy as np
import pytest
import torch

from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.clips import ClipDataset, clip_starts
from lewm_bench.data.dataset import open_dataset
from lewm_bench.errors import DatasetError


def test_clip_starts_literal():
    # history 3, frameskip 5: a clip spans 15 steps (16 frames), so a 15-frame episode has none
    ep, start = clip_starts(np.array([17, 15, 16, 20]), history=3, frameskip=5)
    np.testing.assert_array_equal(ep, [0, 0, 2, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(start, [0, 1, 0, 0, 1, 2, 3, 4])
    ep, start = clip_starts(np.array([3, 4]), history=1, frameskip=2)
    np.testing.assert_array_equal(ep, [0, 1, 1])
    np.testing.assert_array_equal(start, [0, 0, 1])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    cfg = CollectConfig(env="pusht", collector=make_collector("pusht"), episodes=4, max_steps=25, image_size=16,
                        held_out_fraction=0.25)
    return collect(cfg, tmp_path_factory.mktemp("c") / "p.h5", workers=1, progress=False)


@pytest.mark.parametrize("in_memory", [True, False])
def test_clip_matches_the_definition(dataset, in_memory):
    history, fs = 2, 3
    clips = ClipDataset(dataset, "train", history=history, frameskip=fs, in_memory=in_memory)
    with open_dataset(dataset) as ds:
        train = ds.split_episodes("train")
        assert len(clips) == sum(ds.episode_length[e] - history * fs for e in train)
        for i in [0, 5, len(clips) - 1]:
            c = clips[i]
            e, t = c.episode, c.start
            assert e in train
            ep = ds.episode(e)
            assert c.frames.shape == (history + 1, 3, 16, 16) and c.frames.dtype == torch.uint8
            np.testing.assert_array_equal(c.frames.numpy().transpose(0, 2, 3, 1), ep.pixels[t:t + history * fs + 1:fs])
            z = (ep.actions - ds.action_mean) / ds.action_std
            expected = np.stack([z[t + k * fs:t + (k + 1) * fs].reshape(-1) for k in range(history)])
            assert c.actions.shape == (history, fs * 2)
            np.testing.assert_allclose(c.actions.numpy(), expected, rtol=1e-5, atol=1e-5)
            assert not torch.isnan(c.actions).any()
            np.testing.assert_allclose(c.states.numpy(), ep.states[t:t + history * fs + 1:fs], rtol=1e-6)


def test_held_out_clips_come_only_from_held_out_episodes(dataset):
    held = ClipDataset(dataset, "held_out", history=3, frameskip=5)
    train = ClipDataset(dataset, "train", history=3, frameskip=5)
    assert {held[i].episode for i in range(len(held))}.isdisjoint({train[i].episode for i in range(len(train))})


def test_dataloader_batches(dataset):
    loader = torch.utils.data.DataLoader(ClipDataset(dataset), batch_size=8, shuffle=True)
    batch = next(iter(loader))
    assert batch.frames.shape == (8, 4, 3, 16, 16) and batch.actions.shape == (8, 3, 10)


def test_too_short_episodes_are_a_clear_error(dataset):
    with pytest.raises(DatasetError, match="no episode longer than"):
        ClipDataset(dataset, history=3, frameskip=10)
