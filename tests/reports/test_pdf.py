"""The PDFs and the CSV: text extracted with pypdf shows the figures, pseudonyms, the
reader's own row, "page 1 of N" and the clearinghouse name; identical input gives
identical bytes; pages are rendered to PNG under test-artifacts/ for people to look at.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from reportlab.graphics import renderPDF
from statistics_data import pdf_pages, pdf_text, render_png, row

from parsers.model import TYPE1_FIELDS
from parsers.taxonomy import load_taxonomy
from reports.charts import bar_chart
from reports.csv_export import COLUMNS, public_csv
from reports.internal_pdf import Reader, internal_pdf
from reports.layout import table
from reports.pdf import DocumentMeta, render
from reports.periods import window
from reports.public_pdf import public_pdf
from reports.statistics import MonthlyStatistics, compute
from reports.summary import summarise
from reports.summary_pdf import summary_pdf
from store.models import Team
from store.statistics import MessageCount, RevisionRow, StoredReport

PERIOD = "2026-10"
NAME = "Clearinghouse Nord & Süd"  # '&' must survive the markup, 'ü' the fonts
AS_OF = "newest revision of each team's report as stored up to 2026-11-03 10:00 UTC"
STORED = datetime(2026, 11, 2, tzinfo=UTC)
# Team id -> October type 1 (requests, opened, ..., hours); teams 1-4 contribute.
TYPE1 = {
    1: (1204, 311, 298, 1650, 1422, 187, "940.5"),
    2: (200, 20, 22, 30, 40, 50, "60.25"),
    3: (1, 2, 3, 4, 5, 6, "7.5"),
    4: (95, 7, 9, 11, 13, 15, "17"),
}
TYPE2: dict[int, dict[tuple[str, str | None], int]] = {
    1: {("abusive-content", "spam"): 120, ("intrusions", None): 3},
    2: {("abusive-content", "spam"): 30, ("malicious-code", "virus"): 12},
}


def _reports() -> list[StoredReport]:
    found: list[StoredReport] = []
    for month_index, month in enumerate(window(PERIOD)):
        for team, values in TYPE1.items():
            if month != PERIOD and team == 4:
                continue  # team 4 joined in October: earlier months have 3 teams
            scaled = [
                Decimal(str(v)) + month_index - 11 if i == 0 else Decimal(str(v))
                for i, v in enumerate(values)
            ]
            found.append(
                StoredReport(
                    len(found) + 1,
                    team,
                    f"team{team}",
                    "type1",
                    month,
                    1,
                    STORED,
                    type1=dict(zip(TYPE1_FIELDS, scaled, strict=True)),
                )
            )
    for team, counts in TYPE2.items():
        found.append(
            StoredReport(
                len(found) + 1, team, f"team{team}", "type2", PERIOD, 1, STORED, type2=counts
            )
        )
    return found


@pytest.fixture(scope="module")
def stats() -> MonthlyStatistics:
    return compute(_reports(), PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)


@pytest.fixture(scope="module")
def public(stats: MonthlyStatistics) -> bytes:
    return public_pdf(stats, NAME, AS_OF)


def test_public_pdf_shows_averages_counts_and_page_numbers(public: bytes) -> None:
    pages = pdf_pages(public)
    text = "\n".join(pages)
    assert NAME in pages[0] and "Public statistics" in pages[0] and "October 2026" in pages[0]
    assert f"page 1 of {len(pages)}" in pages[0]
    assert f"page {len(pages)} of {len(pages)}" in pages[-1]
    # (1204 + 200 + 1 + 95) / 4 = 375.00; hours (940.5 + 60.25 + 7.5 + 17) / 4 = 256.3125
    assert "375.00" in row(text, "Requests") and "4" in row(text, "Requests")
    assert "256.31" in row(text, "Hours spent")
    assert "Trend over 12 months" in text
    # Type 2 has two teams: every figure reads "not published", and the PDF says why.
    assert "Not published for October 2026: 2 teams contributed, at least 3 are needed" in text
    assert "not published" in row(text, "All incidents")
    assert "Spam" not in text  # no type 2 detail while type 2 is not published
    for handle in ("team1", "team2", "team3", "team4"):
        assert handle not in text


def test_pdfs_are_identical_for_identical_input(stats: MonthlyStatistics, public: bytes) -> None:
    assert public_pdf(stats, NAME, AS_OF) == public
    reader = Reader(1, "CERT One (team1)")
    assert internal_pdf(stats, "type1", NAME, reader) == internal_pdf(stats, "type1", NAME, reader)


def test_internal_pdf_marks_only_the_readers_row(stats: MonthlyStatistics) -> None:
    own = stats.type1.row_of(3)
    assert own is not None
    data = internal_pdf(stats, "type1", NAME, Reader(3, "CERT Three (team3)"))
    pages = pdf_pages(data)
    text = "\n".join(pages)
    assert "Internal statistics, type 1" in pages[0] and NAME in pages[0]
    assert f"your team appears as {own.pseudonym}" in pages[0]
    assert f"page 1 of {len(pages)}" in pages[0]
    assert row(text, f"{own.pseudonym} (your team)").endswith("(your team) 1 2 3 4 5 6 7.5")
    assert text.count("(your team)") == 1
    for team_row in stats.type1.rows:
        assert team_row.pseudonym in text
    first = stats.type1.row_of(1)
    assert first is not None and row(text, f"{first.pseudonym} ").startswith(
        f"{first.pseudonym} 1,204"
    )
    assert "Average (4 teams)" in text and "375.00" in row(text, "Average (4 teams)")
    assert "team3" not in text.replace("(team3)", "")  # the handle only on the title page
    unmarked = pdf_text(internal_pdf(stats, "type1", NAME, None))
    assert "your team" not in unmarked and "no team is marked" in unmarked


def test_internal_type2_shows_each_team_by_class(stats: MonthlyStatistics) -> None:
    data = internal_pdf(stats, "type2", NAME, Reader(2, "CERT Two (team2)"))
    text = pdf_text(data)
    own = stats.type2.row_of(2)
    assert own is not None and f"{own.pseudonym} (you)" in text
    assert "Spam" in text and "Virus" in text
    # Averages over the two contributing teams are shown internally.
    assert "75.00" in row(text, "Spam")
    assert "Harassment" not in text  # types nobody reported are left out


@pytest.mark.parametrize("teams", [45, 120])
def test_internal_pdfs_render_for_many_teams(teams: int) -> None:
    # One chart for every team once grew past the page from about 40 teams.
    many = [
        StoredReport(
            i,
            i,
            f"team{i}",
            "type2",
            PERIOD,
            1,
            STORED,
            type2={("abusive-content", "spam"): i, ("intrusions", None): 3},
        )
        for i in range(1, teams + 1)
    ] + [
        StoredReport(
            teams + i,
            i,
            f"team{i}",
            "type1",
            PERIOD,
            1,
            STORED,
            type1=dict.fromkeys(TYPE1_FIELDS, Decimal(i)),
        )
        for i in range(1, teams + 1)
    ]
    big = compute(many, PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)
    reader = Reader(7, "CERT Seven (team7)")
    assert pdf_text(internal_pdf(big, "type1", NAME, reader)).count("(your team)") == 1
    type2 = pdf_text(internal_pdf(big, "type2", NAME, reader))
    assert "(you)" in type2
    assert f"(teams 31-{min(60, teams)})" in type2


def test_bar_chart_names_each_bar_where_there_is_room_else_every_few() -> None:
    few = pdf_text(renderPDF.drawToString(bar_chart("Few", ["A", "B", "C"], [1, 2, 3], 240, 106)))
    assert {"A", "B", "C"} <= set(few.split())
    names = [f"N{i}" for i in range(600)]
    many = pdf_text(renderPDF.drawToString(bar_chart("Many", names, [1.0] * 600, 240, 106)))
    shown = [word for word in many.split() if word in set(names)]
    # 600 bars in 200 pt: every n-th is named, starting with the first, none overlapping.
    assert shown[0] == "N0" and 5 < len(shown) < 40
    assert len(set(shown)) == len(shown)


def test_table_draws_plain_cells_as_given_and_wraps_long_headings() -> None:
    heading = "A heading far too long for its narrow column"
    flow = [table(["Name", heading], [["R&D <lab>", "1"]], [200, 60])]
    text = pdf_text(render(DocumentMeta("Nord & Süd", "Table", PERIOD, "PUBLIC"), flow))
    assert "R&D <lab>" in text and "&amp;" not in text
    assert "Name" in text and "A heading" in text and "narrow" in text


def test_internal_pdf_without_contributions_says_so(stats: MonthlyStatistics) -> None:
    empty = compute([], PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)
    text = pdf_text(internal_pdf(empty, "type2", NAME, None))
    assert "No team submitted type 2 statistics for this month." in text


def test_summary_pdf_names_teams_missing_and_late() -> None:
    teams = [
        Team(id=1, handle="team1", name="CERT One", email="a@one.example", status="accredited"),
        Team(id=5, handle="team5", name="CERT Five", email="a@five.example", status="certified"),
    ]
    late = [
        RevisionRow(9, "team1", "type1", "2026-09", 2, datetime(2026, 10, 20, 9, 30, tzinfo=UTC))
    ]
    counts = [
        MessageCount("quarantined", "unknown-key", None, 4),
        MessageCount("rejected", "invalid-report", "team5", 2),
        MessageCount("accepted", None, "team1", 7),
    ]
    summary = summarise(
        PERIOD,
        teams,
        _reports(),
        late,
        counts,
        allowed_statuses=["accredited", "certified"],
        day_of_month=5,
    )
    pages = pdf_pages(summary_pdf(summary, NAME))
    text = "\n".join(pages)
    assert "Coordinator summary" in pages[0] and f"page 1 of {len(pages)}" in pages[0]
    assert row(text, "team1") == "team1 CERT One accredited rev. 1, 2026-11-02 rev. 1, 2026-11-02"
    assert row(text, "team5") == "team5 CERT Five certified missing missing"
    assert "team5 (CERT Five): type 1 and type 2 missing" in text
    assert row(text, "team1 type 1") == "team1 type 1 2026-09 2 2026-10-20 09:30"
    assert row(text, "unknown-key").endswith(" 4")
    assert row(text, "invalid-report") == "invalid-report team5 2"


def test_public_csv_has_published_figures_only(stats: MonthlyStatistics) -> None:
    rows = list(csv.DictReader(io.StringIO(public_csv(stats).decode("utf-8"))))
    assert tuple(rows[0]) == COLUMNS
    by_key = {(r["period"], r["type"], r["figure"]): r for r in rows}
    requests = by_key[(PERIOD, "type1", "requests")]
    assert requests["average"] == "375.00" and requests["teams"] == "4"
    assert requests["published"] == "yes"
    spam = by_key[(PERIOD, "type2", "abusive-content/spam")]
    assert spam["average"] == "" and spam["teams"] == "2" and spam["published"] == "no"
    assert by_key[("2025-11", "type1", "requests")]["teams"] == "3"
    assert len(rows) == 12 * (len(stats.type1.lines) + len(stats.type2.lines))
    assert {r["taxonomy"] for r in rows if r["type"] == "type2"} == {"ecsirt-v2"}
    assert {r["taxonomy"] for r in rows if r["type"] == "type1"} == {""}


@pytest.mark.parametrize("canonical", ["ecsirt-v2", "rsit-1.3"])
def test_every_output_names_the_taxonomy_and_its_version(canonical: str) -> None:
    """Above the type 2 tables of every PDF, and in each type 2 row of the CSV."""
    taxonomy = load_taxonomy(canonical=canonical)
    stats = compute(_reports(), PERIOD, taxonomy, minimum=2, secret=b"k" * 32)
    named = taxonomy.canonical_vocabulary.full_name  # "RSIT 1.3 (..., machine-readable ...)"
    caption = f"Incident classes and types: {named}."
    public = " ".join(pdf_text(public_pdf(stats, NAME, AS_OF)).split())
    assert caption in public
    internal = " ".join(pdf_text(internal_pdf(stats, "type2", NAME, None)).split())
    assert internal.count(caption) == 2  # above the class chart and above the table
    assert caption not in " ".join(pdf_text(internal_pdf(stats, "type1", NAME, None)).split())
    rows = list(csv.DictReader(io.StringIO(public_csv(stats).decode("utf-8"))))
    assert {r["taxonomy"] for r in rows if r["type"] == "type2"} == {canonical}


def test_pages_render_to_png(stats: MonthlyStatistics, public: bytes) -> None:
    """Writes test-artifacts/*.png: look at them after changing the layout."""
    if not render_png(public, "public"):
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    reader = Reader(1, "CERT One (team1)")
    for report_type in ("type1", "type2"):
        pngs = render_png(internal_pdf(stats, report_type, NAME, reader), f"internal-{report_type}")
        assert len(pngs) >= 2
    teams = [Team(id=1, handle="team1", name="CERT One", email="a@one.example", status="certified")]
    summary = summarise(
        PERIOD, teams, _reports(), [], [], allowed_statuses=["certified"], day_of_month=5
    )
    assert len(render_png(summary_pdf(summary, NAME), "coordinator-summary")) >= 2
