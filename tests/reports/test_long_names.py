"""Every PDF renders whatever a stored name holds: a name of thousands of characters
without a space (stored before names had a limit), or with line breaks, is shown on one
line of at most 200 characters, wrapped in its cell or title, instead of aborting the
run (a table cell taller than a page was a LayoutError: no file at all)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from statistics_data import pdf_text

from parsers.model import TYPE1_FIELDS
from parsers.taxonomy import load_taxonomy
from reports.internal_pdf import Reader, internal_pdf
from reports.public_pdf import public_pdf
from reports.statistics import compute
from reports.summary import summarise
from reports.summary_pdf import summary_pdf
from store.models import Team
from store.statistics import StoredReport

PERIOD = "2026-10"
STORED = datetime(2026, 11, 2, tzinfo=UTC)
LONG = "CERT" + "x" * 5996  # 6,000 characters, no space to break at
NAMES = [LONG, "Line one\r\nLine two", "Short", LONG + "y"]  # the last submits nothing


def _teams() -> list[Team]:
    return [
        Team(id=i, handle=f"t{i}", name=name, email=f"c@t{i}.example", status="certified")
        for i, name in enumerate(NAMES, start=1)
    ]


def _reports(with_second_month: bool) -> list[StoredReport]:
    found = [
        StoredReport(
            i, i, f"t{i}", "type1", PERIOD, 1, STORED, type1=dict.fromkeys(TYPE1_FIELDS, Decimal(i))
        )  # fmt: skip
        for i in range(1, len(NAMES))
    ]
    if with_second_month:  # the team with and without a submission: both set-ups
        found.append(
            StoredReport(
                9,
                1,
                "t1",
                "type1",
                "2026-09",
                1,
                STORED,
                type1=dict.fromkeys(TYPE1_FIELDS, Decimal(5)),
            )  # fmt: skip
        )
    return found


@pytest.mark.parametrize("with_second_month", [False, True])
def test_every_pdf_renders_a_long_unbroken_name(with_second_month: bool) -> None:
    reports = _reports(with_second_month)
    stats = compute(reports, PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)
    summary = summarise(
        PERIOD, _teams(), reports, [], [], allowed_statuses=["certified"], day_of_month=5
    )
    rendered = {
        "summary": summary_pdf(summary, LONG),
        "public": public_pdf(stats, LONG, "as stored"),
        "internal": internal_pdf(stats, "type1", LONG, Reader(1, f"{LONG} (t1)")),
    }
    for which, data in rendered.items():
        text = "".join(pdf_text(data).split())  # the name comes back, wrapped and cut
        assert "CERT" + "x" * 100 in text and "x" * 300 not in text, which
    summary_text = pdf_text(rendered["summary"])
    assert "Line one" in summary_text and "Line two" in summary_text
