"""One writer per output: an exclusive, non-blocking advisory lock beside each output.

Every output that a command writes (a dataset file, a checkpoint folder, an evaluation or suite
folder) is owned by one process at a time. The owner holds ``fcntl.flock`` on ``OUTPUT.lock``
(beside the output, so deleting or replacing the output never drops the lock) and writes into that
file who it is: pid, host, start time and command. A second writer fails at once with a one-line
:class:`OutputLockedError` that names the holder and says how to proceed; it never waits.

The kernel drops an ``flock`` when the holding process ends in any way, ``kill -9`` included, so a
lock is never left behind: a leftover ``.lock`` file from a killed run is simply taken over. A
normal release deletes the file. The lock is per process and re-entrant within it (a function that
locks its output may be called by one that already holds that lock), and works across hosts where
the file system supports ``flock`` (local disks; NFS v4 and Lustre emulate it with POSIX locks).

Example::

    with lock_output("runs/data/pusht/expert.h5"):
        ...  # the only process writing runs/data/pusht/expert.h5
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lewm_bench.errors import LewmBenchError


class OutputLockedError(LewmBenchError):
    """Another process is writing the same output."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as written into its ``.lock`` file."""

    pid: int
    host: str
    since: str
    """ISO-8601 UTC time the lock was taken."""
    command: str


def lock_path(output: str | os.PathLike[str]) -> Path:
    """The lock file of ``output``: ``OUTPUT.lock`` in the same folder (for files and folders alike)."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


def read_holder(output: str | os.PathLike[str]) -> LockHolder | None:
    """The process recorded in ``output``'s lock file (``None`` when there is no readable record).

    The record may be stale (its process killed); only a failed :func:`lock_output` proves a holder.
    """
    try:
        return _parse(lock_path(output).read_bytes())
    except OSError:
        return None


_held: dict[Path, list] = {}  # lock file -> [fd, depth, pid]; re-entrance within one process
_held_guard = threading.Lock()


def lock_output(output: str | os.PathLike[str], command: str | None = None, wait_s: float = 0.0) -> OutputLock:
    """The exclusive write lock of ``output``, to hold with ``with`` (see :class:`OutputLock`)."""
    return OutputLock(output, command, wait_s)


class OutputLock:
    """The exclusive write lock of ``output`` (a file or folder; need not exist yet).

    Use as a context manager, or call :meth:`acquire` / :meth:`release`. Acquiring fails at once
    with :class:`OutputLockedError` when another process holds the lock, and with
    :class:`~lewm_bench.errors.LewmBenchError` when the lock file cannot be created (the folder is
    not writable, or lies under a file). The lock's folder is created if missing.

    Args:
        output: the output path to own.
        command: recorded as the holder's command (default: this process's command line).
        wait_s: how long to wait for another holder to release the lock before failing (default 0: fail at
            once). For outputs that many processes update briefly, such as a shared ``summary.csv``.
    """

    def __init__(self, output: str | os.PathLike[str], command: str | None = None, wait_s: float = 0.0) -> None:
        self.output = Path(output)
        self.wait_s = wait_s
        self.path = Path(os.path.abspath(lock_path(self.output)))
        self.command = command if command is not None else _command_line()
        self._acquired = False

    def acquire(self) -> OutputLock:
        if self._acquired:
            raise RuntimeError(f"lock on {self.output} acquired twice through the same object")
        with _held_guard:
            entry = _held.get(self.path)
            if entry is not None and entry[2] == os.getpid():
                entry[1] += 1
                self._acquired = True
                return self
            deadline = time.monotonic() + self.wait_s
            while True:
                try:
                    fd = self._take()
                    break
                except OutputLockedError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)
            _held[self.path] = [fd, 1, os.getpid()]
        self._acquired = True
        return self

    def release(self) -> None:
        if not self._acquired:
            return
        self._acquired = False
        with _held_guard:
            entry = _held[self.path]
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _held[self.path]
            # Delete while still holding, then unlock: a process that opened the old file meanwhile
            # sees after locking that the path is gone or is another file, and retries (see _take).
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(entry[0])

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --------------------------------------------------------------------------------- helpers
    def _take(self) -> int:
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise LewmBenchError(f"cannot create the lock file {self.path} for {self.output} "
                                     f"({exc.strerror}); expected a writable folder: choose another output "
                                     "location") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse(_read_fd(fd))
                os.close(fd)
                raise OutputLockedError(self._locked_message(holder)) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise LewmBenchError(f"cannot lock {self.output}: the file system of {self.path.parent} does "
                                         f"not support file locks ({exc.strerror}); expected a local or "
                                         "lock-capable file system: choose another output location") from None
                raise
            # The previous holder may have deleted the file between our open and our lock.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return fd

    def _locked_message(self, holder: LockHolder | None) -> str:
        if holder is None:
            who = "another process (it is just starting: no record yet)"
            how = "wait for it to finish or stop it"
        else:
            who = f"pid {holder.pid} on {holder.host} since {holder.since} ({holder.command})"
            if holder.host == socket.gethostname() and not pid_alive(holder.pid):
                who += f"; pid {holder.pid} has exited but a process it started still holds the lock"
                how = f"stop that process (find it with: fuser {self.path})"
            else:
                where = "" if holder.host == socket.gethostname() else f" on {holder.host}"
                how = f"wait for it to finish or stop it (kill {holder.pid}{where})"
        return (f"{self.output} is being written by another lewm-bench process: {who}; expected one writer per "
                f"output: {how}, or choose another output")


def _command_line() -> str:
    argv = list(sys.argv) or ["python"]
    argv[0] = os.path.basename(argv[0]) or "python"
    return shlex.join(argv)


def _read_fd(fd: int) -> bytes:
    try:
        return os.pread(fd, 65536, 0)
    except OSError:
        return b""


def _parse(raw: bytes) -> LockHolder | None:
    try:
        record = json.loads(raw.decode())
        return LockHolder(int(record["pid"]), str(record["host"]), str(record["since"]), str(record["command"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a finished child not yet reaped, a zombie, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): the signal test is all there is
        return True
