"""The bad-input table: what lewm-bench does with every kind of bad input it handles.

Every row runs one command with one bad value and asserts exit status 2, exactly one error line on
stderr that names the problem, no traceback, and no file left behind (the files of the workspace
are compared before and after). The rule for stderr: a failed command prints its ``profile: NAME``
line (commands that size their work print it first) and then exactly one ``lewm-bench: error: ...``
line; option errors are found before the profile line and print only the error line.

Rows are called in-process (``lewm_bench.cli.main``) for speed; a few go through the real entry
point in a subprocess. Grow the table when a new bad input is handled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import h5py
import pytest

from lewm_bench import cli

POSITIVE = ["0", "-1", "x"]  # zero never means "the profile's value"
NON_NEGATIVE = ["-1", "x"]
POSITIVE_FLOAT = ["0", "-1", "nan", "x"]
NUMERIC = {  # command -> option -> bad values
    ("collect", "--env", "two-room"): {"--episodes": POSITIVE, "--max-steps": POSITIVE, "--image-size": POSITIVE,
                                      "--workers": POSITIVE, "--seed": NON_NEGATIVE,
                                      "--held-out-fraction": ["-0.1", "1", "1.5", "nan", "x"]},
    ("train", "--env", "two-room"): {"--epochs": POSITIVE, "--steps-per-epoch": POSITIVE, "--batch-size": POSITIVE,
                                    "--lr": POSITIVE_FLOAT, "--seed": NON_NEGATIVE,
                                    "--sigreg-weight": ["-1", "inf", "x"]},
    ("eval", "--env", "two-room", "--agent", "random"): {
        "--episodes": POSITIVE, "--context": POSITIVE, "--iterations": POSITIVE, "--candidates": POSITIVE,
        "--batch": POSITIVE, "--timing-calls": NON_NEGATIVE, "--seed": NON_NEGATIVE},
    ("run", "--suite", "smoke"): {"--workers": POSITIVE, "--calls": POSITIVE,
                                  "--seeds": ["-1", "0,-1", "0,,1", "a", "1.5", "0,0", ""]},
    ("analyze", "voe", "--env", "two-room"): {"--trajectories": POSITIVE, "--seed": NON_NEGATIVE},
    ("bench", "envs"): {"--sizes": POSITIVE, "--seconds": POSITIVE_FLOAT},
    ("bench", "planning"): {"--batch": POSITIVE, "--calls": POSITIVE, "--context": POSITIVE, "--ops": NON_NEGATIVE},
}
NUMBER_ROWS = [pytest.param([*command, f"{option}={value}"], f"argument {option}: expected",
                            id=f"{command[0]} {option}={value!r}")
               for command, options in NUMERIC.items() for option, values in options.items() for value in values]

NAME_ROWS = [pytest.param(args, message, id=" ".join(args)) for args, message in [
    (["collect", "--env", "mars"], "unknown environment 'mars'"),
    (["collect", "--env", "two-room,"], "empty environment name"),
    (["collect", "--env", "pusht", "--collector", "oracle"], "valid collectors: random, expert, pusher"),
    (["collect", "--env", "two-room", "--profile", "huge"], "argument --profile: invalid choice: 'huge'"),
    (["collect", "--env", "two-room", "--image-size", "4"], "image_size must be >= 8"),
    (["train", "--env", "mars", "--profile", "smoke"], "unknown environment 'mars'"),
    (["train", "--env", "two-room", "--agent", "dreamer", "--profile", "smoke"], "valid agents:"),
    (["train", "--env", "two-room", "--agent", "random", "--profile", "smoke"], "nothing to train"),
    (["eval", "--env", "mars", "--agent", "random", "--profile", "smoke"], "unknown environment 'mars'"),
    (["eval", "--env", "two-room", "--agent", "dreamer", "--profile", "smoke"], "valid agents:"),
    (["eval", "--env", "two-room", "--planner", "newton"], "argument --planner: invalid choice: 'newton'"),
    (["eval", "--env", "two-room", "--protocol", "v9"], "argument --protocol: invalid choice: 'v9'"),
    (["eval", "--env", "two-room", "--split", "test"], "argument --split: invalid choice: 'test'"),
    (["run", "--suite", "everything"], "unknown suite 'everything'"),
    (["run", "--suite", "smoke", "--envs", ""], "empty environment name"),
    (["run", "--suite", "smoke", "--envs", "mars"], "unknown environment 'mars'"),
    (["run", "--suite", "smoke", "--agents", ""], "argument --agents: expected names separated by commas"),
    (["run", "--suite", "smoke", "--agents", "lewm,dreamer"], "valid agents:"),
    (["run", "--suite", "smoke", "--profile", "cpu"], "always uses profile 'smoke'"),
    (["analyze", "surprise", "--env", "two-room"], "argument kind: invalid choice: 'surprise'"),
    (["analyze", "voe", "--env", "two-room", "--agent", "dreamer", "--profile", "smoke"], "valid agents:"),
    (["agents", "--env", "mars", "--profile", "smoke"], "unknown environment 'mars'"),
    (["bench", "everything"], "argument what: invalid choice: 'everything'"),
    (["fly"], "argument COMMAND: invalid choice: 'fly'"),
    (["train"], "the following arguments are required: --env"),
]]

EVAL = ["eval", "--env", "two-room", "--agent", "random", "--profile", "smoke"]
TRAIN = ["train", "--env", "two-room", "--profile", "smoke", "--no-progress"]
SUITE = ["run", "--suite", "smoke", "--envs", "two-room", "--no-progress"]
FILE_ROWS = [pytest.param(args, message, id=name) for name, args, message in [
    ("datasets missing", ["datasets", "{W}/missing.h5"], "missing.h5: no such dataset"),
    ("import dataset missing", ["import", "dataset", "{W}/missing.h5", "--env", "two-room"],
     "missing.h5: no such file"),
    ("import dataset foreign", ["import", "dataset", "{W}/foreign.h5", "--env", "two-room", "--out", "{W}/imp.h5"],
     "foreign.h5: not a readable HDF5 file"),
    ("import checkpoint no config", ["import", "checkpoint", "{W}/foreign.h5", "--data", "{W}/data.h5"],
     "config.json: missing"),
    ("datasets truncated", ["datasets", "{W}/truncated.h5"], "truncated.h5: not a readable HDF5 file"),
    ("datasets foreign", ["datasets", "{W}/foreign.h5"], "foreign.h5: not a readable HDF5 file"),
    ("datasets not-lewm", ["datasets", "{W}/other.h5"], "other.h5: not a lewm-bench dataset"),
    ("datasets --verify corrupt", ["datasets", "--verify", "--no-progress", "{W}/corrupt.h5"],
     "1 of 1 dataset files damaged"),
    ("collect --out folder", ["collect", "--env", "two-room", "--profile", "smoke", "--out", "{W}/adir"],
     "adir is a folder; expected a dataset file path"),
    ("collect --out foreign", ["collect", "--env", "two-room", "--profile", "smoke", "--out", "{W}/foreign.h5"],
     "foreign.h5: not a readable HDF5 file"),
    ("collect --out under file", ["collect", "--env", "two-room", "--profile", "smoke", "--out", "{W}/afile/x.h5"],
     "afile is an existing file"),
    ("train --data missing", [*TRAIN, "--data", "{W}/missing.h5"], "no dataset for two-room at"),
    ("train --data truncated", [*TRAIN, "--data", "{W}/truncated.h5"], "truncated.h5: not a readable HDF5 file"),
    ("train --data foreign", [*TRAIN, "--data", "{W}/foreign.h5"], "foreign.h5: not a readable HDF5 file"),
    ("train --data corrupt chunk", [*TRAIN, "--data", "{W}/corrupt.h5"], "(pixels) unreadable"),
    ("train --data other env", [*TRAIN, "--env", "pusht", "--data", "{W}/data.h5"], "holds env 'two-room', not"),
    ("train --out file", [*TRAIN, "--data", "{W}/data.h5", "--out", "{W}/afile"], "afile is an existing file"),
    ("train --out under file", [*TRAIN, "--data", "{W}/data.h5", "--out", "{W}/afile/run"], "lies under the file"),
    ("train garbage config.json", [*TRAIN, "--data", "{W}/data.h5", "--out", "{W}/cfgrun"],
     "config.json: unreadable run configuration"),
    ("eval --data missing", [*EVAL, "--data", "{W}/missing.h5"], "missing.h5: no such dataset"),
    ("eval --data truncated", [*EVAL, "--data", "{W}/truncated.h5"], "truncated.h5: not a readable HDF5 file"),
    ("eval --data foreign", [*EVAL, "--data", "{W}/foreign.h5"], "foreign.h5: not a readable HDF5 file"),
    ("eval --out file", [*EVAL, "--data", "{W}/data.h5", "--out", "{W}/afile"], "afile is an existing file"),
    ("eval --out under file", [*EVAL, "--data", "{W}/data.h5", "--out", "{W}/afile/e"], "lies under the file"),
    ("eval --root file", [*EVAL, "--data", "{W}/data.h5", "--root", "{W}/afile"], "afile is an existing file"),
    ("eval garbage summary.csv", [*EVAL, "--data", "{W}/data.h5", "--root", "{W}/garbage"],
     "summary.csv: not a summary table"),
    ("eval text summary.csv", [*EVAL, "--data", "{W}/data.h5", "--root", "{W}/text"],
     "summary.csv: not a summary table"),
    ("eval no checkpoint", [*EVAL, "--agent", "lewm", "--root", "{W}/adir"], "no checkpoint; train one with"),
    ("eval garbage checkpoint", [*EVAL, "--agent", "lewm", "--checkpoint", "{W}/badckpt"], "unreadable checkpoint"),
    ("analyze garbage checkpoint", ["analyze", "voe", "--env", "two-room", "--profile", "smoke", "--checkpoint",
                                    "{W}/badckpt"], "unreadable checkpoint"),
    ("analyze --root file", ["analyze", "probe", "--env", "two-room", "--profile", "smoke", "--root", "{W}/afile"],
     "afile/analysis/two-room/lewm-smoke-seed0 lies under the file"),
    ("run --out file", [*SUITE, "--out", "{W}/afile"], "afile is an existing file"),
    ("run --out under file", [*SUITE, "--out", "{W}/afile/runs"], "lies under the file"),
    ("run truncated job record", [*SUITE, "--out", "{W}/suite"], "collect__two-room.json: not valid JSON"),
    ("run garbage suite.json", [*SUITE, "--out", "{W}/oldsuite"], "suite format unreadable"),
    ("report no summary", ["report", "--root", "{W}/adir"], "no evaluation results: expected"),
    ("report garbage summary.csv", ["report", "--root", "{W}/garbage"], "summary.csv: not a readable CSV table"),
    ("report text summary.csv", ["report", "--root", "{W}/text"], "summary.csv lacks the columns"),
]]
READ_ONLY_ROWS = [pytest.param(args, id=name) for name, args in [
    ("collect", ["collect", "--env", "two-room", "--profile", "smoke", "--out", "{W}/ro/d.h5"]),
    ("train", [*TRAIN, "--data", "{W}/data.h5", "--out", "{W}/ro/run"]),
    ("eval --out", [*EVAL, "--data", "{W}/data.h5", "--out", "{W}/ro/eval"]),
    ("eval --root", [*EVAL, "--data", "{W}/data.h5", "--root", "{W}/ro"]),
    ("analyze", ["analyze", "voe", "--env", "two-room", "--profile", "smoke", "--root", "{W}/ro"]),
    ("run", [*SUITE, "--out", "{W}/ro/runs"]),
]]


def _flip_chunk(path, array, first_row):
    """Invert bytes in the middle of the stored chunk of ``array`` that holds ``first_row``."""
    with h5py.File(path, "r") as f:
        dsid = f[array].id
        rows = f[array].chunks[0]
        info = next(i for i in (dsid.get_chunk_info(k) for k in range(dsid.get_num_chunks()))
                    if i.chunk_offset[0] == first_row - first_row % rows)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        raw = fh.read(16)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes(b ^ 0xFF for b in raw))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder of good and bad inputs: a smoke Two-Room dataset and damaged copies, files where folders go."""
    w = tmp_path_factory.mktemp("bad")
    assert cli.main(["collect", "--env", "two-room", "--profile", "smoke", "--out", str(w / "data.h5"),
                     "--workers", "1", "--no-progress"]) == 0
    raw = (w / "data.h5").read_bytes()
    (w / "truncated.h5").write_bytes(raw[:len(raw) // 2])
    (w / "foreign.h5").write_text("a text file, not HDF5\n")
    with h5py.File(w / "other.h5", "w") as f:
        f["x"] = [1, 2, 3]
    shutil.copy(w / "data.h5", w / "corrupt.h5")
    with h5py.File(w / "corrupt.h5", "r") as f:  # damage a pixel chunk of the first training episode
        train_episode = int(next(e for e, held in enumerate(f["episodes/held_out"][:]) if not held))
        first_row = int(f["episodes/start"][train_episode])
    _flip_chunk(w / "corrupt.h5", "pixels", first_row)
    (w / "afile").write_text("a file where a folder is expected\n")
    (w / "adir").mkdir()
    (w / "cfgrun").mkdir()
    (w / "cfgrun" / "summary.json").write_text("{}")
    (w / "cfgrun" / "config.json").write_text('{"agent": "lew')
    (w / "badckpt").mkdir()
    (w / "badckpt" / "checkpoint.pt").write_bytes(b"\x80\x02garbage" * 10)
    for name, content in (("garbage", bytes(range(256)) * 8), ("text", b"hello\nworld\n")):
        (w / name).mkdir()
        (w / name / "summary.csv").write_bytes(content)
    from lewm_bench.suite import SUITE_FORMAT

    (w / "suite" / "jobs").mkdir(parents=True)
    (w / "suite" / "suite.json").write_text(f'{{"suite_format": {SUITE_FORMAT}}}')
    (w / "suite" / "jobs" / "collect__two-room.json").write_text('{"name": "collect/two-room", "key": "ab')
    (w / "oldsuite").mkdir()
    (w / "oldsuite" / "suite.json").write_bytes(b"\x00garbage")
    (w / "ro").mkdir()
    (w / "ro").chmod(0o555)
    yield w
    (w / "ro").chmod(0o755)


def _files(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _check_row(args, message, workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)  # default output paths (runs/...) land in the workspace too
    before = _files(workspace)
    argv = [a.replace("{W}", str(workspace)) for a in args]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2, (argv, captured.err)
    assert "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    if lines and lines[0].startswith("profile: "):
        lines = lines[1:]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("lewm-bench: error: ") and message in lines[0], lines[0]
    assert _files(workspace) == before, "a failed command left or changed files"


@pytest.mark.parametrize("args, message", NUMBER_ROWS + NAME_ROWS + FILE_ROWS)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(args, message, workspace, capsys, monkeypatch):
    _check_row(args, message, workspace, capsys, monkeypatch)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: permissions cannot be tested")
@pytest.mark.parametrize("args", READ_ONLY_ROWS)
def test_a_read_only_output_folder_is_refused_before_any_work(args, workspace, capsys, monkeypatch):
    _check_row(args, "is not writable", workspace, capsys, monkeypatch)


@pytest.mark.parametrize("args", READ_ONLY_ROWS)
def test_a_read_only_output_folder_is_refused_before_any_work_as_the_os_reports_it(args, workspace, capsys,
                                                                                   monkeypatch):
    """The same rows where the test runs as root: ``os.access`` answers for the folder as for another user."""
    ro = str(workspace / "ro")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == ro else real(p, mode, **kw))
    _check_row(args, f"{ro} is not writable", workspace, capsys, monkeypatch)


def test_a_corrupt_chunk_met_mid_training_is_one_line_naming_the_dataset_and_episode(workspace, capsys, monkeypatch,
                                                                                      tmp_path):
    """A dataset that opens fine but fails a read while training (frames read from disk, not preloaded)."""
    monkeypatch.setattr("lewm_bench.data.clips.IN_MEMORY_LIMIT_BYTES", 0)
    code = cli.main([*TRAIN, "--data", str(workspace / "corrupt.h5"), "--out", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.strip() and not line.startswith("profile: ")]
    assert f"{workspace / 'corrupt.h5'}: episode " in line and "(pixels) unreadable" in line
    assert f"lewm-bench datasets --verify {workspace / 'corrupt.h5'}" in line
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("checkpoint.pt"))


@pytest.mark.parametrize("args, message", [
    (["run", "--suite", "smoke", "--seeds", "0,-1"], "argument --seeds: expected"),
    (["train", "--env", "two-room", "--profile", "smoke", "--data", "{W}/corrupt.h5", "--out", "{W}/adir/run"],
     "(pixels) unreadable"),
], ids=["run --seeds", "train corrupt"])
def test_the_real_entry_point_prints_one_line(args, message, workspace):
    argv = [a.replace("{W}", str(workspace)) for a in args]
    proc = subprocess.run([sys.executable, "-m", "lewm_bench.cli", *argv], capture_output=True, text=True,
                          timeout=300, cwd=workspace)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("profile: ")]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_the_table_covers_every_command():
    rows = NUMBER_ROWS + NAME_ROWS + FILE_ROWS
    covered = {p.values[0][0] for p in rows}
    commands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert commands - {"envs"} <= covered  # envs takes no input
