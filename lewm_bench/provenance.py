"""Where and with what a result was made: the device, the machine and the code's commit.

Every result file and checkpoint records these through this module, so every table says the same
thing in the same words.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lewm_bench import __version__


def default_device(local_rank: int = 0) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device | str) -> str:
    """Human name of a device: the GPU's model, or ``cpu (N cores, ISA)`` with the vector instructions torch uses;
    ``cpu (N cores, K torch threads, ISA)`` when torch uses fewer threads than there are cores (a job given a share
    of the machine), since its timings are then not the machine's."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    share = f"{threads} torch thread{'s' * (threads > 1)}, " if threads < cores else ""
    return f"cpu ({cores} cores, {share}{torch.backends.cpu.get_cpu_capability()})"


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` has fast bf16 kernels: a CUDA GPU that supports bf16, or a CPU on which oneDNN has bf16
    kernels (AVX-512 / AMX). Elsewhere bf16 autocast falls back to slow reference kernels: on an AVX2-only CPU a
    cpu-profile LeWM training step measured 12x slower in bf16 than in fp32 (its patch convolution alone 9x)."""
    return _native_bf16(str(torch.device(device)))


@functools.cache
def _native_bf16(device_str: str) -> bool:
    device = torch.device(device_str)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


@functools.cache
def git_commit() -> str:
    """Short commit of the lewm-bench source (``-dirty`` with uncommitted changes), or ``unknown``.

    Read once per process — the command line reads it as it starts — so that a result names the tree its code was
    loaded from, not a commit checked out while it ran (an hour-long suite outlives many commits).
    ``$LEWM_BENCH_COMMIT``, when set, is returned as it is: for a copy of the tree whose git metadata is
    missing or stale (a GPU machine or cluster node the source was copied to)."""
    if os.environ.get("LEWM_BENCH_COMMIT"):
        return os.environ["LEWM_BENCH_COMMIT"]
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=here)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, cwd=here)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where a measurement ran: host, CPU, cores, torch threads, GPU, Python, commit."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "commit": git_commit()}


@dataclass(frozen=True)
class Provenance:
    """Recorded with every run; never part of a result's identity."""

    commit: str
    device: str
    host: str
    created: str
    lewm_bench_version: str

    @classmethod
    def now(cls, device: torch.device | str) -> Provenance:
        return cls(git_commit(), device_name(device), socket.gethostname(), time.strftime("%Y-%m-%dT%H:%M:%S"),
                   __version__)
