"""Figures as the benchmarks print them: easy to quote, one line each.

In: figures of one or more runs, each a name and one or more numbers ("p50 / p99").
Out: lines `name  value / value`, or with several runs `median [lowest-highest]` for each
number, with as many decimals as the unit wants (ratios two, milliseconds one, percent,
MiB and counts none).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

Figures = dict[str, tuple[float, ...]]  # name -> one or more numbers


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(runs: list[Figures]) -> None:
    """Each figure: its numbers (one run), or their medians with the range (several)."""
    names = list(dict.fromkeys(name for found in runs for name in found))
    width = max(map(len, names))
    for name in names:
        series = [found[name] for found in runs if name in found]
        columns = list(zip(*series, strict=True))
        digits = 2 if "ratio" in name else 0 if _whole(name) else 1
        if len(series) == 1:
            text = " / ".join(f"{v:.{digits}f}" for v in series[0])
        else:
            text = " / ".join(_median_range(c, digits) for c in columns)
        print(f"{name:<{width}}  {text}")
    if len(runs) > 1:
        print(f"({len(runs)} runs: median [lowest-highest])")


def _whole(name: str) -> bool:
    return any(unit in name for unit in ("(%)", "(MiB)", "processes at once"))


def _median_range(values: Sequence[float], digits: int) -> str:
    low, middle, high = (
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{middle} [{low}-{high}]"
