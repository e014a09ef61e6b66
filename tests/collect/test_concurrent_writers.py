"""Two `lewm-bench collect` runs with the same --out: one fails naming the other, one completes, the data verifies."""

import signal
import socket
import subprocess
import sys
import time

from lewm_bench.data.dataset import verify_dataset
from lewm_bench.locks import read_holder


def _collect(out, workers):
    return [sys.executable, "-m", "lewm_bench.cli", "collect", "--env", "two-room", "--episodes", "24", "--max-steps",
            "30", "--image-size", "16", "--workers", str(workers), "--out", str(out), "--no-progress"]


def test_a_second_collect_of_the_same_output_fails_naming_the_first(tmp_path):
    out = tmp_path / "d.h5"
    first = subprocess.Popen(_collect(out, 2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list(out.with_name("d.h5.partial").glob("ep_*.npz")):
            time.sleep(0.05)
        assert read_holder(out).pid == first.pid
        first.send_signal(signal.SIGSTOP)  # hold it mid-collection, lock held, while the second one starts
        second = subprocess.run(_collect(out, 1), capture_output=True, text=True, timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 2
    lines = [line for line in second.stderr.splitlines() if line.startswith("lewm-bench: error")]
    assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
    assert lines[0].startswith(f"lewm-bench: error: {out} is being written by another lewm-bench process: "
                               f"pid {first.pid} on {socket.gethostname()} since ")
    assert "collect --env two-room" in lines[0] and f"kill {first.pid}" in lines[0]
    assert verify_dataset(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]  # no lock, spool or temporary file left
