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
