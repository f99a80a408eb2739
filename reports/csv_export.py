"""public.csv: the public figures of the 12-month window, one row per figure and month.

In: a `MonthlyStatistics`. Out: UTF-8 CSV bytes (RFC 4180, CRLF line ends), safe to
publish as they are: the average is given only where the figure is published, i.e. at
least the threshold number of teams contributed; otherwise the cell is empty and
`published` is "no". Columns: period, type, figure (a stable key: a type 1 field name,
"total", a class slug, "class/type", or "class/-" for the class-only line), label,
average (rounded half-up to two decimals), teams, published, and taxonomy: for a type 2
figure the id of the incident taxonomy it is counted in, with its version ("ecsirt-v2",
"rsit-1.3"), empty for type 1. It is the last column, so that readers of the columns
before it by position are not disturbed.
"""

from __future__ import annotations

import csv
import io

from reports.statistics import TYPES, MonthlyStatistics
from reports.taxonomy_labels import TAXONOMY_COLUMN, taxonomy_cell

COLUMNS = ("period", "type", "figure", "label", "average", "teams", "published", TAXONOMY_COLUMN)


def public_csv(stats: MonthlyStatistics) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for report_type in TYPES:
        of_type = stats.of(report_type)
        taxonomy = taxonomy_cell(stats, report_type)
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
                        taxonomy,
                    )
                )
    return buffer.getvalue().encode("utf-8")
