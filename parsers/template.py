"""Blank reports: what `clearinghouse template` prints and the `template` mail command sends.

In: a report type, the taxonomy, optionally a period. Out: report text in the format of
SPEC.md that the text parser accepts once every count is filled in.
"""

from __future__ import annotations

from parsers.fieldnames import TYPE1_LABELS
from parsers.model import TYPE1_FIELDS
from parsers.taxonomy import Taxonomy

TYPES = ("type1", "type2")


def blank_report(report_type: str, taxonomy: Taxonomy, period: str = "YYYY-MM") -> str:
    """A report with every field present and its value left empty."""
    if report_type == "type1":
        lines = [f"# {TYPE1_LABELS[f]}\n{f.title()}: " for f in TYPE1_FIELDS]
        head = "# Type 1: all seven fields are required; whole numbers except hours."
    elif report_type == "type2":
        lines = [f"{label}: " for _, label in taxonomy.categories()]
        head = (
            "# Type 2: count each incident once, under its primary class and type.\n"
            "# A class-only line counts incidents of that class with no type given.\n"
            "# Leave out (or delete) the lines you do not use."
        )
    else:
        raise ValueError(f"unknown report type {report_type!r}; one of {', '.join(TYPES)}")
    return f"{head}\nReport: {report_type}\nPeriod: {period}\n" + "\n".join(lines) + "\n"
