"""lewm_bench.allocator: freed blocks are reused without fresh pages, measured as minor page faults."""

import json
import subprocess
import sys

import pytest

# In a fresh interpreter: allocate, touch and free a 64 MiB block three times; print the minor page faults of the
# last two rounds and what keep_freed_memory returned (when asked to call it: twice).
PROBE = """
import ctypes, json, resource, sys
from lewm_bench.allocator import keep_freed_memory
applied = [keep_freed_memory(), keep_freed_memory()] if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
size, faults = 64 << 20, []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults[1:]}))
"""
PAGES = (64 << 20) // 4096


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the thresholds are glibc's")
def test_freed_blocks_are_reused_without_fresh_pages():
    kept = probe("keep")
    if kept["applied"] == [False, False]:
        pytest.skip("not glibc: keep_freed_memory does nothing here")
    assert kept["applied"] == [True, True]  # set once, the same answer again
    default = probe("default")
    # glibc's default maps each 64 MiB block afresh: every page faults again on its first touch
    assert min(default["faults"]) > PAGES // 2, default
    assert max(kept["faults"]) < PAGES // 20, kept
