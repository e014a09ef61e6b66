"""Fault injection for the crash tests: ``LEWM_BENCH_FAULT=POINT[:N]`` kills this process with SIGKILL
the ``N``-th time (default: the first) it reaches the named point.

The points are where a crash is most likely to lose or corrupt work:

- ``train-step``: after an optimiser step (during an epoch);
- ``checkpoint-tmp``: a checkpoint fully written to its temporary file, before the rename;
- ``suite-job-done``: a suite job finished and its record saved, before the next job starts;
- ``online-checkpoint``: an online learner (``sac-her``) saved a complete checkpoint, mid-training.

The variable is read here only; unset (always, outside tests) a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "LEWM_BENCH_FAULT"
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process (``kill -9``, no clean-up) if ``LEWM_BENCH_FAULT`` names this point and count."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
