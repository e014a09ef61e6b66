"""Shared measuring helpers: warm-up then wall-clock rates, and result output.

The machine a figure ran on comes from :mod:`lewm_bench.provenance`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from lewm_bench import io


def rate(fn: Callable[[], Any], min_seconds: float = 1.0, warmup: int = 3, max_calls: int = 1_000_000) -> float:
    """Calls per second of ``fn`` after ``warmup`` calls, timed over at least ``min_seconds``."""
    for _ in range(warmup):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or calls >= max_calls:
            return calls / elapsed


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned text table."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_json(path: str | os.PathLike[str] | None, payload: dict[str, Any]) -> None:
    """Write a benchmark's figures when ``--json PATH`` was given."""
    if path is not None:
        io.write_json(path, payload)
