"""Import of stable-worldmodel HDF5 datasets: the layout written as stable-worldmodel's HDF5Writer does, then read."""

import dataclasses
import hashlib
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from lewm_bench.cli import main
from lewm_bench.collect.policies import make_collector
from lewm_bench.collect.runner import CollectConfig, collect
from lewm_bench.data.dataset import open_dataset, verify_dataset
from lewm_bench.data.importer import guess_env, import_dataset, provenance_of
from lewm_bench.errors import DatasetError
from lewm_bench.profiles import PROFILES
from lewm_bench.training.trainer import train


def write_swm_h5(path, episodes, state_key="proprio", last_action=np.nan, extra=None, state_scale=224 / 64):
    """Episodes (pixels, actions, states) in stable-worldmodel 0.1.1's HDF5 layout: resizable per-column datasets
    chunked one row at a time, ep_len (int32) and ep_offset (int64); the last action row is the reset's placeholder.
    Two-room states go in stable-worldmodel's 224-px units (``state_scale``)."""
    columns = {"pixels": [], "action": [], state_key: []}
    for pixels, actions, states in episodes:
        acts = np.array(actions, np.float32)
        acts[-1] = last_action
        columns["pixels"].append(pixels)
        columns["action"].append(acts)
        columns[state_key].append((states * state_scale).astype(np.float32))
    lengths = [len(p) for p in columns["pixels"]]
    with h5py.File(path, "w", libver="latest") as f:
        for name, parts in {**columns, **(extra or {})}.items():
            data = np.concatenate(parts)
            f.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]), chunks=(1, *data.shape[1:]))
        f.create_dataset("ep_len", data=np.asarray(lengths, np.int32), maxshape=(None,))
        f.create_dataset("ep_offset", data=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                         maxshape=(None,))
    return path


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """Real two-room episodes (16 px) to write in the reference layout."""
    cfg = CollectConfig(env="two-room", collector=make_collector("two-room"), episodes=10, max_steps=30,
                        image_size=16)
    path = collect(cfg, tmp_path_factory.mktemp("d") / "two.h5", workers=1, progress=False)
    with open_dataset(path) as ds:
        return [(ep.pixels, ep.actions, ep.states) for ep in map(ds.episode, range(10))]


@pytest.fixture(scope="module")
def source(episodes, tmp_path_factory):
    return write_swm_h5(tmp_path_factory.mktemp("swm") / "tworoom.h5", episodes)


def test_import_keeps_every_row_splits_episodes_and_records_provenance(source, episodes, tmp_path):
    out = import_dataset(source, out=tmp_path / "two.h5", held_out_fraction=0.2, seed=3)
    assert (out.env, out.episodes, out.held_out_episodes, out.image_size) == ("two-room", 10, 2, 16)
    assert out.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert verify_dataset(out.path) == []
    with open_dataset(out.path, "two-room") as ds:
        for e, (pixels, actions, states) in enumerate(episodes):
            ep = ds.episode(e)
            np.testing.assert_array_equal(ep.pixels, pixels)
            np.testing.assert_array_equal(ep.actions[:-1], actions[:-1])
            assert np.isnan(ep.actions[-1]).all()
            np.testing.assert_allclose(ep.states, states, rtol=1e-6)  # back in our 64-unit canvas
        train_rows = np.concatenate([episodes[e][1][:-1] for e in ds.split_episodes("train")])
        np.testing.assert_allclose(ds.action_mean, train_rows.mean(0), rtol=1e-5)
        np.testing.assert_allclose(ds.action_std, train_rows.std(0), rtol=1e-4)
        params = ds.meta.collector_params
        assert ds.meta.collector == "stable-worldmodel" and params["state_key"] == "proprio"
        assert ds.meta.env_kwargs == {"image_size": 16}  # evaluation renders at the frames' size
        assert params["source_layout"] == "stable-worldmodel-hdf5" and params["source_bytes"] == source.stat().st_size
    prov = provenance_of(out.path)
    check = prov["render_check"]  # our env renders the imported states as the frames show them
    assert check["rows"] == 8 and check["own_state_mad"] < 0.2 * check["other_state_mad"], check
    assert prov["source_path"] == str(source.resolve()) and prov["imported"] and prov["source_episodes"] == 10
    again = import_dataset(source, out=tmp_path / "again.h5", held_out_fraction=0.2, seed=3)
    other = import_dataset(source, out=tmp_path / "other.h5", held_out_fraction=0.2, seed=4)
    with open_dataset(again.path) as a, open_dataset(out.path) as b, open_dataset(other.path) as c:
        assert (a.held_out == b.held_out).all() and not (c.held_out == b.held_out).all()


def test_finite_placeholder_on_the_last_row_becomes_nan(episodes, tmp_path):
    src = write_swm_h5(tmp_path / "tworoom.h5", episodes[:3], last_action=0.0)
    out = import_dataset(src, out=tmp_path / "two.h5")
    with open_dataset(out.path) as ds:
        assert all(np.isnan(ds.episode(e).actions[-1]).all() for e in range(3))


def test_states_in_other_units_show_in_the_render_check(episodes, tmp_path):
    src = write_swm_h5(tmp_path / "tworoom.h5", episodes, state_scale=1.0)  # our units, read as 224-px units
    check = import_dataset(src, out=tmp_path / "two.h5").render_check
    assert check["own_state_mad"] > 0.5 * check["other_state_mad"], check


def test_imported_dataset_trains_through_the_normal_trainer(source, tmp_path):
    data = import_dataset(source, out=tmp_path / "two.h5", held_out_fraction=0.2).path
    smoke = PROFILES["smoke"]
    tcfg = dataclasses.replace(smoke.train, epochs=1, steps_per_epoch=3)
    result = train("two-room", smoke, data=data, out=tmp_path / "run", progress=False, train_config=tcfg)
    assert result.finished and result.summary["steps"] == 3
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert len(log) == 2 and np.isfinite(log.loss.iloc[-1]) and np.isfinite(log.val_pred_loss.iloc[-1])


def test_bad_sources_give_one_line_errors(episodes, tmp_path, capsys):
    junk = tmp_path / "tworoom.h5"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        import_dataset(junk, out=tmp_path / "o.h5")
    with h5py.File(tmp_path / "foreign_tworoom.h5", "w") as f:
        f["observations"] = np.zeros((4, 2))
    with pytest.raises(DatasetError, match=r"missing ep_len, ep_offset, pixels, action; has observations"):
        import_dataset(tmp_path / "foreign_tworoom.h5", out=tmp_path / "o.h5")
    src = write_swm_h5(tmp_path / "ep.h5", episodes[:2])
    with pytest.raises(DatasetError, match=r"action is \(\d+, 2\); env cube needs \(\d+, 5\)"):
        import_dataset(src, env="cube", out=tmp_path / "o.h5")
    with pytest.raises(DatasetError, match="cannot tell the env"):
        import_dataset(src, out=tmp_path / "o.h5")
    big = [(np.repeat(np.repeat(p, 3, 1), 3, 2), a, s) for p, a, s in episodes[:2]]  # 48 px frames
    with pytest.raises(DatasetError, match="frames are 48 px; env two-room is rendered at"):
        import_dataset(write_swm_h5(tmp_path / "big.h5", big), env="two-room", out=tmp_path / "o.h5")
    wide = [(p, a, np.concatenate([s, s], 1)) for p, a, s in episodes[:2]]
    with pytest.raises(DatasetError, match=r"no state column of width 2 .*found proprio \(\d+, 4\)"):
        import_dataset(write_swm_h5(tmp_path / "wide.h5", wide), env="two-room", out=tmp_path / "o.h5")
    ok = write_swm_h5(tmp_path / "ok.h5", episodes[:2], state_key="observation",
                      extra={"state": [np.zeros((len(episodes[0][0]) + len(episodes[1][0]), 2), np.float32)]})
    with pytest.raises(DatasetError, match="no state column of width 2"):  # an explicit key must fit
        import_dataset(ok, env="two-room", state_key="pixels", out=tmp_path / "o.h5")
    args = ["import", "dataset", str(junk), "--out", str(tmp_path / "o.h5")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lewm-bench: error:") and "\n" not in err


def test_cli_import_dataset_and_refuse_to_overwrite(source, tmp_path, capsys):
    out = tmp_path / "two.h5"
    assert main(["import", "dataset", str(source), "--out", str(out), "--seed", "1"]) == 0
    assert "two-room 10 episodes (1 held out)" in capsys.readouterr().out
    assert main(["import", "dataset", str(source), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import", "dataset", str(source), "--out", str(out), "--force", "--held-out-fraction", "0.3"]) == 0
    with h5py.File(out) as f:
        assert json.loads(f.attrs["collector_params"])["source_name"] == "tworoom.h5"
        assert f.attrs["held_out_fraction"] == 0.3


def test_env_is_guessed_from_the_official_file_names():
    assert guess_env("pusht_expert_train.h5") == "pusht" and guess_env("/x/tworoom.h5") == "two-room"
    assert guess_env("ogbench/cube_single_expert.h5") == "cube" and guess_env("dmc/reacher_random.h5") is None


def test_authors_data_and_weights_evaluate_through_the_cli(source, tmp_path, capsys):
    """The README's three commands, on a dataset and a checkpoint written in the reference layouts."""
    import torch

    from lewm_bench.models.lewm import PRESETS, LeWM
    from lewm_bench.training.import_checkpoint import to_reference_config, to_reference_state

    data, run, release = tmp_path / "two.h5", tmp_path / "lewm-authors", tmp_path / "release"
    assert main(["import", "dataset", str(source), "--out", str(data), "--held-out-fraction", "0.3"]) == 0
    torch.manual_seed(0)
    model = LeWM(PRESETS["smoke"], 16, 10)
    release.mkdir()
    torch.save(to_reference_state(model), release / "weights.pt")
    (release / "config.json").write_text(json.dumps(to_reference_config(model.config, 16, 10)))
    assert main(["import", "checkpoint", str(release), "--data", str(data), "--out", str(run)]) == 0
    assert main(["eval", "--env", "two-room", "--profile", "smoke", "--checkpoint", str(run), "--out",
                 str(tmp_path / "eval"), "--root", str(tmp_path), "--episodes", "2", "--timing-calls", "1"]) == 0
    record = json.loads((tmp_path / "eval" / "result.json").read_text())
    assert record["episodes"] == 2 and record["agent"] == "lewm"
    assert "success" in capsys.readouterr().out
