"""Progress bars for long admin commands (click.progressbar), drawn on stderr.

Stdout stays what it was without a bar, a listing a script may read; the lines a
command would have printed along the way are printed once the bar is done. Where
stderr is not a terminal (cron, systemd, a pipe), click draws no bar and writes only
its label, once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click

T = TypeVar("T")
Echo = Callable[[str], None]


def collect(items: Iterable[T], length: int, label: str) -> list[T]:
    """Every item of `items` (about `length` of them), with a bar while they come."""
    if length <= 0:
        return list(items)
    with click.progressbar(items, length=length, label=label, file=sys.stderr) as bar:
        return list(bar)


@contextmanager
def steps(label: str, estimate: int, echo: Echo) -> Iterator[Echo]:
    """A callback for progress lines, each moving a bar of about `estimate` steps.

    The lines are echoed when the block ends (also when it raises), after the bar.
    """
    lines: list[str] = []
    bar = click.progressbar(
        length=max(estimate, 1), label=label, file=sys.stderr, item_show_func=_short
    )
    try:
        with bar:

            def step(line: str) -> None:
                lines.append(line)
                bar.update(1, line)

            yield step
            bar.update(max((bar.length or 0) - bar.pos, 0))  # an estimate: end at 100 %
    finally:
        for line in lines:
            echo(line)


def _short(line: str | None) -> str | None:
    if line is None or len(line) <= 48:
        return line
    return line[:45] + "..."
