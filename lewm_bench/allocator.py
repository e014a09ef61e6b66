"""Keep freed memory in the process instead of returning it to the system (glibc's ``mallopt``).

glibc's default allocator serves every block above a dynamic threshold (128 KiB to 32 MiB) with its own ``mmap`` and
gives it back on ``free``, and trims the top of the heap whenever more than about twice that threshold is free. A
training step or a planning call allocates and frees the same large tensors again and again (activations, attention
scores, gradients), so each time the kernel maps fresh pages and zeroes them on their first touch: a cpu-profile LeWM
training step took about 121,000 minor page faults (some 500 MB of fresh pages) and ran 1.5x faster without them on a
2-core machine (``results/bench/allocator-avx512.txt``).

:func:`keep_freed_memory` sets a fixed ``mmap`` threshold of :data:`MMAP_THRESHOLD` (only larger blocks get their own
mapping) and a trim threshold of :data:`TRIM_THRESHOLD`, so that freed blocks stay in the heap for the next step.
The process's peak memory is what its largest step needs, as before; between peaks, freed memory is not returned.
The command line calls it in every process it starts (:func:`lewm_bench.cli.main`, and
:func:`lewm_bench.suite.run_job` in submitted jobs); a program that uses the library directly may call it too.
Numbers are unaffected: only where memory comes from changes.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""``mallopt`` parameter numbers (glibc's ``malloc.h``)."""
MMAP_THRESHOLD = 1 << 30
"""Blocks of at least 1 GiB still get their own mapping (returned on ``free``): a dataset's frames, not a step's
tensors."""
TRIM_THRESHOLD = (1 << 31) - 1
"""The heap's top is given back only when more than 2 GiB of it is free (the largest value ``mallopt`` takes)."""

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) for this process, once.

    Returns:
        True where they are set (Linux with glibc); False elsewhere (macOS, Windows, musl), where it does nothing.
    """
    global _applied
    if _applied is None:
        try:
            libc = ctypes.CDLL(None)
            libc.gnu_get_libc_version  # noqa: B018 - present in glibc only
            mallopt = libc.mallopt
        except (OSError, AttributeError, TypeError):
            _applied = False
        else:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return _applied
