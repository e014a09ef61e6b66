import h5py
import numpy as np
import pytest

from lewm_bench.data.dataset import Episode, open_dataset, verify_dataset, write_dataset

LENGTHS = [8, 8, 8]  # pixels are stored in 4-frame chunks: rows 8-11 and 12-15 belong to episode 1 only
META = {"env_name": "two-room", "env_id": "lewm_bench/TwoRoom-v0", "env_kwargs": {"image_size": 16},
        "image_size": 16, "collector": "expert", "collector_params": {}, "seed": 0, "max_steps": 7,
        "held_out_fraction": 0.0}


def _episodes():
    rng = np.random.default_rng(0)
    for n in LENGTHS:
        actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        actions[-1] = np.nan
        yield Episode(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), actions, rng.normal(size=(n, 2)), 7)


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(path, META, _episodes(), np.array(LENGTHS))
    return path


def _flip_chunk(path, array, first_row):
    """Invert 16 bytes in the middle of the stored chunk of ``array`` that starts at ``first_row``."""
    with h5py.File(path, "r") as f:
        dsid = f[array].id
        infos = [dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())]
    info = next(i for i in infos if i.chunk_offset[0] == first_row)
    with open(path, "r+b") as fh:
        at = info.byte_offset + info.size // 2
        fh.seek(at)
        raw = fh.read(16)
        fh.seek(at)
        fh.write(bytes(b ^ 0xFF for b in raw))


def test_an_intact_dataset_verifies_clean(dataset):
    assert verify_dataset(dataset) == []
    assert not dataset.with_name("d.h5.tmp").exists() and not dataset.with_name("d.h5.lock").exists()


def test_a_corrupt_pixel_chunk_names_its_episode(dataset):
    _flip_chunk(dataset, "pixels", 8)
    with open_dataset(dataset) as ds:  # the structure is intact: opening does not notice
        assert ds.meta.num_episodes == 3
    problems = verify_dataset(dataset)
    assert [(p.episode, p.array) for p in problems] == [(1, "pixels")]
    assert str(problems[0]).startswith("episode 1 (pixels): rows 8-15 unreadable")


def test_a_flipped_action_is_caught_by_its_checksum(dataset):
    _flip_chunk(dataset, "actions", 0)  # one chunk holds all 24 rows: every episode is named
    assert [(p.episode, p.array) for p in verify_dataset(dataset)] == [(0, "actions"), (1, "actions"), (2, "actions")]


def test_a_chunk_never_written_is_reported(tmp_path, dataset):
    holed = tmp_path / "holed.h5"
    with h5py.File(dataset, "r") as src, h5py.File(holed, "w") as dst:
        for key in src:
            src.copy(key, dst)
        dst.attrs.update(src.attrs)
        del dst["pixels"]
        pix = dst.create_dataset("pixels", src["pixels"].shape, np.uint8, chunks=src["pixels"].chunks)
        pix[:16] = src["pixels"][:16]  # rows 16-23 (episode 2) never written: they would read as zeros
    assert [(p.episode, p.array, "never written" in p.detail) for p in verify_dataset(holed)] == [(2, "pixels", True)]


def test_a_truncated_file_is_one_file_level_problem(dataset):
    data = dataset.read_bytes()
    dataset.write_bytes(data[: len(data) // 2])
    problems = verify_dataset(dataset)
    assert len(problems) == 1 and problems[0].episode is None
    assert "d.h5" in str(problems[0]) and "\n" not in str(problems[0])


def test_a_failed_write_leaves_the_previous_dataset_and_no_temporary_file(dataset):
    before = dataset.read_bytes()

    def dies_in_the_second_episode():
        episodes = _episodes()
        yield next(episodes)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_dataset(dataset, META, dies_in_the_second_episode(), np.array(LENGTHS))
    assert dataset.read_bytes() == before and verify_dataset(dataset) == []
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["d.h5"]


def test_datasets_verify_command_prints_ok_or_the_damaged_episode_and_exits_2(dataset, tmp_path, capsys):
    from lewm_bench import cli

    good = tmp_path / "good.h5"
    write_dataset(good, META, _episodes(), np.array(LENGTHS))
    assert cli.main(["datasets", "--verify", "--no-progress", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: OK\n"
    _flip_chunk(dataset, "pixels", 8)
    assert cli.main(["datasets", "--verify", "--no-progress", str(good), str(dataset)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == f"{good}: OK"
    assert len(lines) == 2 and lines[1].startswith(f"{dataset}: episode 1 (pixels): rows 8-15 unreadable")
    assert captured.err.strip().splitlines() == [
        "lewm-bench: error: 1 of 2 dataset files damaged (listed above); delete each and recollect it with the same "
        "lewm-bench collect command"]
