"""kill -9 of `lewm-bench collect` must not leave its worker processes (or the resource tracker) running."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def _children(pid):
    """{child pid: command line} of the live (not zombie) children of ``pid``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = cmdline
    return found


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def test_workers_and_resource_tracker_exit_when_collect_is_killed(tmp_path):
    out = tmp_path / "d.h5"
    cmd = [sys.executable, "-m", "lewm_bench.cli", "collect", "--env", "pusht", "--episodes", "400", "--max-steps",
           "30", "--image-size", "16", "--workers", "2", "--out", str(out), "--no-progress"]
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    workers = {}
    while time.time() < deadline:
        children = _children(parent.pid)
        workers = {p: c for p, c in children.items() if "spawn_main" in c}
        if len(workers) == 2 and list(out.with_name("d.h5.partial").glob("ep_*.npz")):
            break
        time.sleep(0.1)
    assert len(workers) == 2, f"expected 2 worker processes of the collect; got {children}"
    assert any("resource_tracker" in c for c in children.values())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline and _alive(children):
        time.sleep(0.1)
    left = {p: children[p] for p in _alive(children)}
    assert not left, f"processes of the killed collect still running: {left}"
