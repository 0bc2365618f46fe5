"""Print the figures that the benchmarks of this ``make bench`` run recorded (``figures.py``) as one table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table


def main() -> int:
    path = Path(os.environ.get("RISKGYM_BENCH_FIGURES", ""))
    if not path.is_file():
        print("no figures recorded: run the benchmarks with RISKGYM_BENCH_FIGURES set (make bench does)")
        return 1
    table = Table(title="make bench: headline figures", caption="ratio = figure / reference; for a figure where "
                  "higher is better (marked ↑), the goal is met at >= 1x, otherwise at <= 1x")
    for col in ("figure", "value", "reference", "ratio"):
        table.add_column(col, justify="left" if col == "figure" else "right", no_wrap=True)
    for line in path.read_text().splitlines():
        r = json.loads(line)
        ref = r["reference"]
        arrow = "" if r["lower_is_better"] else " ↑"
        table.add_row(r["name"] + arrow, f"{r['value']:,.{0 if r['value'] >= 100 else 2}f} {r['unit']}",
                      f"{ref:,g} {r['unit']} ({r['against']})" if ref is not None else "-",
                      f"{r['value'] / ref:.2f}x" if ref else "")
    Console(width=max(Console().width, 170)).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
