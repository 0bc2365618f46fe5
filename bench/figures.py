"""The headline figures of ``make bench``: each benchmark records its own, ``summary.py`` prints them as one table.

A figure is recorded in the JSON-lines file that ``RISKGYM_BENCH_FIGURES`` names (nothing is recorded without it),
with what it is compared to: a floor from PERF.md or a goal from an issue.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def record(name: str, value: float, unit: str, reference: float | None = None, against: str = "",
           lower_is_better: bool = True) -> None:
    """Note one figure, e.g. ``record("env step, shell true", 2.5, "ms", 0.77, "PERF.md floor")``."""
    path = os.environ.get("RISKGYM_BENCH_FIGURES")
    if not path:
        return
    row: dict[str, Any] = {"name": name, "value": value, "unit": unit, "reference": reference, "against": against,
                           "lower_is_better": lower_is_better}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def median_ms(fn: Callable[[], Any], n: int) -> float:
    """The median time of ``n`` calls of ``fn``, in milliseconds."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
