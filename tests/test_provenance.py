"""Provenance: the commit a result names."""
from __future__ import annotations

import re

import pytest

from lewm_bench.provenance import git_commit


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
