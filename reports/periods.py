"""Calendar months as the statistics use them: "YYYY-MM" strings and their boundaries.

In: a period string, a date, the configured report day. Out: validated periods, months
before and after, a 12-month window, and the UTC instants that bound a month and its
report day. All times are UTC: a month is [first day 00:00 UTC, next first day 00:00 UTC).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta

_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def parse_period(text: str) -> tuple[int, int]:
    """(year, month) of a "YYYY-MM" period; ValueError for anything else."""
    match = _PERIOD.match(text)
    if match is None:
        raise ValueError(f"expected a month as YYYY-MM, found {text!r}")
    return int(match.group(1)), int(match.group(2))


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def shift(period: str, months: int) -> str:
    """The period `months` later (negative: earlier)."""
    year, month = parse_period(period)
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def previous_period(day: date) -> str:
    """The month before the one `day` is in: what a run on `day` reports on."""
    return shift(period_of(day), -1)


def window(period: str, months: int = 12) -> tuple[str, ...]:
    """The `months` periods ending with `period`, oldest first."""
    return tuple(shift(period, offset) for offset in range(1 - months, 1))


def month_start(period: str) -> datetime:
    year, month = parse_period(period)
    return datetime(year, month, 1, tzinfo=UTC)


def month_end(period: str) -> datetime:
    """The first instant after `period`: 00:00 UTC on the first of the next month."""
    return month_start(shift(period, 1))


@functools.cache  # pure; the coordinators' summary asks it for each stored revision
def report_day(period: str, day_of_month: int) -> datetime:
    """00:00 UTC of the report day for `period`: day `day_of_month` of the next month.

    A revision for `period` stored at or after this instant is "late": a run on the
    configured day has already sent the figures without it.
    """
    return month_start(shift(period, 1)).replace(day=day_of_month)


def submission_round(period: str, day_of_month: int) -> tuple[datetime, datetime]:
    """When the reports for `period` arrive: from the report day of the month before
    (when the previous month's figures were made) to `period`'s report day. October's
    reports come in October and early November, not in October alone."""
    return report_day(shift(period, -1), day_of_month), report_day(period, day_of_month)


def round_name(period: str, day_of_month: int) -> str:
    """ "5 October to 4 November 2026": the days of `period`'s submission round."""
    start, end = submission_round(period, day_of_month)
    last = end - timedelta(days=1)
    first = f"{start.day} {_MONTHS[start.month - 1]}" + (
        f" {start.year}" if start.year != last.year else ""
    )
    return f"{first} to {last.day} {month_name(period_of(last))}"


def month_name(period: str) -> str:
    """ "October 2026" for "2026-10"."""
    year, month = parse_period(period)
    return f"{_MONTHS[month - 1]} {year}"


def axis_label(period: str, first: bool = False) -> str:
    """ "Oct" for "2026-10"; with the year below in January and on the `first` label."""
    year, month = parse_period(period)
    name = _MONTHS[month - 1][:3]
    return f"{name}\n{year}" if first or month == 1 else name
