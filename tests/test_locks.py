import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from lewm_bench.errors import LewmBenchError
from lewm_bench.locks import OutputLockedError, lock_output, lock_path, read_holder

HOLD = """
import sys, time
from lewm_bench.locks import lock_output
with lock_output(sys.argv[1], command="lewm-bench collect --out held"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path / "out"."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path, holder):
    with pytest.raises(OutputLockedError) as err:
        lock_output(tmp_path / "out").acquire()
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path / 'out'} is being written by another lewm-bench process" in message
    assert f"pid {holder.pid} on {socket.gethostname()} since " in message
    assert "(lewm-bench collect --out held)" in message and f"kill {holder.pid}" in message
    assert read_holder(tmp_path / "out").pid == holder.pid


def test_kill_9_releases_the_lock_and_the_next_writer_takes_over_the_file(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(tmp_path / "out").exists()  # left behind by the killed holder, but not locked
    with lock_output(tmp_path / "out", command="second"):
        record = json.loads(lock_path(tmp_path / "out").read_text())
        assert record["pid"] == os.getpid() and record["command"] == "second"
    assert not lock_path(tmp_path / "out").exists()  # a normal release removes the file


def test_the_lock_is_reentrant_within_a_process_and_released_by_the_outermost(tmp_path):
    out = tmp_path / "sub" / "ckpt"  # a folder output that does not exist yet; its parent is created
    with lock_output(out):
        with lock_output(out):
            pass
        assert lock_path(out).exists()
        probe = subprocess.run([sys.executable, "-c", HOLD, str(out)], capture_output=True, text=True, timeout=60)
        assert probe.returncode == 1 and "OutputLockedError" in probe.stderr and f"pid {os.getpid()}" in probe.stderr
    assert not lock_path(out).exists()


def test_an_output_under_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(LewmBenchError, match=r"cannot create the lock file .*file/out\.lock") as err:
        lock_output(tmp_path / "file" / "out").acquire()
    assert "\n" not in str(err.value)


def test_a_shared_table_lock_waits_for_its_holder_when_asked(tmp_path, holder):
    import threading
    import time

    threading.Timer(0.5, holder.kill).start()  # the holder goes away half a second from now
    t0 = time.monotonic()
    with lock_output(tmp_path / "out", wait_s=30):
        assert time.monotonic() - t0 >= 0.4


RUN_FOLDERS = [
    (["train", "--env", "two-room", "--profile", "smoke", "--no-progress"], "train/two-room/lewm-smoke-seed0"),
    (["eval", "--env", "two-room", "--agent", "random", "--profile", "smoke"], "eval/two-room/random-smoke-seed0"),
    (["analyze", "voe", "--env", "two-room", "--profile", "smoke"], "analysis/two-room/lewm-smoke-seed0/voe"),
    (["run", "--suite", "smoke", "--envs", "two-room", "--no-progress"], ""),
    (["report"], "report"),
]


def _options(command, root, out):
    if command[0] == "train":
        return ["--out", str(out), "--data-root", str(root / "data")]
    return ["--out", str(root)] if command[0] == "run" else ["--root", str(root)]


def _one_line(stderr):
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("profile:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_second_train_fails_at_once_naming_the_holder_through_the_real_entry_point(tmp_path):
    """The test process holds the run folder's lock; ``train`` in a subprocess fails before any work."""
    command, folder = RUN_FOLDERS[0]
    root = tmp_path / "runs"
    out = root / folder
    with lock_output(out, command="lewm-bench holder-in-test"):
        proc = subprocess.run([sys.executable, "-m", "lewm_bench.cli", *command, *_options(command, root, out)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert f"{out} is being written by another lewm-bench process: pid {os.getpid()}" in line
    assert "(lewm-bench holder-in-test)" in line
    assert not out.exists()  # nothing was written before the lock was refused


@pytest.mark.parametrize("command, folder", RUN_FOLDERS[1:], ids=[c[0] for c, _ in RUN_FOLDERS[1:]])
def test_every_command_fails_at_once_on_a_folder_another_process_writes(tmp_path, capsys, command, folder):
    from lewm_bench import cli

    root = tmp_path / "runs"
    out = root / folder if folder else root
    if command[0] == "report":  # a report needs results to get as far as writing
        root.mkdir()
        (root / "summary.csv").write_text("env\n")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        if command[0] == "report":
            from lewm_bench.report import build_report  # the summary check comes first; the lock guards the writes

            with pytest.raises(OutputLockedError, match=f"pid {proc.pid}"), \
                    pytest.MonkeyPatch.context() as mp:
                mp.setattr("lewm_bench.report.load_summaries", lambda roots, *_: _summary())
                build_report(root)
            return
        assert cli.main([*command, *_options(command, root, out)]) == 2
    finally:
        proc.kill()
        proc.wait()
    line = _one_line(capsys.readouterr().err)
    assert f"{out} is being written by another lewm-bench process: pid {proc.pid}" in line
    assert not out.exists() or not any(out.iterdir())


def _summary():
    import pandas as pd

    return pd.DataFrame([dict(env="two-room", agent="random", profile="smoke", seed=0, episodes=2, success_rate=0.5,
                              plan_time_median_s=None, tokens_per_frame=None, encoder_tokens_per_frame=None,
                              straightness=None, params_trainable=0, params_frozen=0, train_time_s=None,
                              eval_time_s=1.0, device="cpu", commit="x", config_id="a", variant="v")])


def test_lock_files_never_enter_listings(tmp_path, capsys):
    from lewm_bench import cli

    data = tmp_path / "data" / "two-room"
    data.mkdir(parents=True)
    with lock_output(data / "expert.h5"):  # a collection just starting: only its lock file exists
        assert cli.main(["datasets", "--data-root", str(tmp_path / "data")]) == 0
    assert "no datasets under" in capsys.readouterr().out
