"""public.csv: the public figures of the 12-month window, one row per figure and month.

In: a `MonthlyStatistics`. Out: UTF-8 CSV bytes (RFC 4180, CRLF line ends), safe to
publish as they are: the average is given only where the figure is published, i.e. at
least the threshold number of teams contributed; otherwise the cell is empty and
`published` is "no". Columns: period, type, figure (a stable key: a type 1 field name,
"total", a class slug, "class/type", or "class/-" for the class-only line), label,
average (rounded half-up to two decimals), teams, published.
"""

from __future__ import annotations

import csv
import io

from reports.statistics import TYPES, MonthlyStatistics

COLUMNS = ("period", "type", "figure", "label", "average", "teams", "published")


def public_csv(stats: MonthlyStatistics) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for report_type in TYPES:
        of_type = stats.of(report_type)
        for index, month in enumerate(of_type.months):
            for line in of_type.lines:
                figure = of_type.trend[line.key][index]
                shown = figure.rounded() if figure.published else None
                writer.writerow(
                    (
                        month,
                        report_type,
                        line.key,
                        line.label,
                        "" if shown is None else f"{shown:.2f}",
                        figure.teams,
                        "yes" if figure.published else "no",
                    )
                )
    return buffer.getvalue().encode("utf-8")
