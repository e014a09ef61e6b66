"""Provenance: the commit and the device a result names."""
from __future__ import annotations

import re

import pytest
import torch

from lewm_bench.provenance import device_name, git_commit


@pytest.fixture()
def fresh_commit():
    git_commit.cache_clear()  # read once per process otherwise
    yield git_commit
    git_commit.cache_clear()


def test_commit_is_read_from_the_source_tree(fresh_commit, monkeypatch):
    monkeypatch.delenv("LEWM_BENCH_COMMIT", raising=False)
    assert re.fullmatch(r"[0-9a-f]{7,40}(-dirty)?|unknown", fresh_commit())


def test_commit_override_names_a_copied_tree(fresh_commit, monkeypatch):
    monkeypatch.setenv("LEWM_BENCH_COMMIT", "abc1234")
    assert fresh_commit() == "abc1234"


def test_a_cpu_device_names_its_torch_threads_when_fewer_than_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    isa = torch.backends.cpu.get_cpu_capability()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert device_name("cpu") == f"cpu (4 cores, {isa})"
        torch.set_num_threads(1)
        assert device_name("cpu") == f"cpu (4 cores, 1 torch thread, {isa})"
        torch.set_num_threads(2)
        assert device_name("cpu") == f"cpu (4 cores, 2 torch threads, {isa})"
    finally:
        torch.set_num_threads(threads)
