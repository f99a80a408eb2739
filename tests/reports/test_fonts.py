"""PDFs in any European script: team names in Latin Extended, Greek and Cyrillic are
drawn with an embedded Unicode TrueType font and read back from the PDF, with pypdf and
with poppler's pdftotext; a missing font is one line naming the package to install.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream
from statistics_data import pdf_pages, pdf_text, render_png, row

from contract.errors import ClearinghouseError
from parsers.model import TYPE1_FIELDS
from parsers.taxonomy import load_taxonomy
from reports.fonts import BOLD, PACKAGE, REGULAR, find
from reports.internal_pdf import Reader, internal_pdf
from reports.public_pdf import public_pdf
from reports.statistics import compute
from reports.summary import summarise
from reports.summary_pdf import summary_pdf
from store.models import Team
from store.statistics import StoredReport

PERIOD = "2026-10"
CLEARINGHOUSE = "Clearinghouse Středa–Ευρώπη–Европа"
NAMES = {
    "cesnet": "CESNET-CERTS Česko",
    "grnet": "Ελληνική ομάδα",
    "bgcert": "Български екип",
}
STORED = datetime(2026, 11, 2, tzinfo=UTC)


def _teams() -> list[Team]:
    return [
        Team(id=i, handle=handle, name=name, email=f"cert@{handle}.example", status="certified")
        for i, (handle, name) in enumerate(NAMES.items(), start=1)
    ]


def _reports() -> list[StoredReport]:
    """Each team's type 1 report for the month: its id in every field."""
    return [
        StoredReport(
            i, i, handle, "type1", PERIOD, 1, STORED, type1=dict.fromkeys(TYPE1_FIELDS, Decimal(i))
        )
        for i, handle in enumerate(NAMES, start=1)
    ]


def _summary_pdf() -> bytes:
    summary = summarise(
        PERIOD, _teams(), _reports(), [], [], allowed_statuses=["certified"], day_of_month=5
    )
    return summary_pdf(summary, CLEARINGHOUSE)


def _drawn_fonts(data: bytes) -> dict[str, bool]:
    """Base font name -> embedded?, for every font some text of the PDF is drawn in.

    reportlab names fonts in page resources that it never draws with (each page and each
    table cell starts in Helvetica): only the font in force at a text-showing operator
    (Tj, TJ, ', ") counts.
    """
    drawn: dict[str, bool] = {}
    reader = PdfReader(io.BytesIO(data))
    for page in reader.pages:
        fonts: Any = page["/Resources"].get_object()["/Font"]  # type: ignore[index]
        current: Any = None
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                current = fonts[operands[0]].get_object()
            elif operator in (b"Tj", b"TJ", b"'", b'"') and current is not None:
                descendant = current.get("/DescendantFonts")
                detail = descendant[0].get_object() if descendant else current
                descriptor = detail.get("/FontDescriptor")
                embedded = descriptor is not None and "/FontFile2" in descriptor.get_object()
                drawn[str(current["/BaseFont"])] = embedded
    return drawn


def test_team_names_in_any_script_render_and_read_back() -> None:
    data = _summary_pdf()
    text = pdf_text(data)
    for handle, name in NAMES.items():
        assert row(text, handle).startswith(f"{handle} {name} certified")
    assert CLEARINGHOUSE in text
    render_png(data, "fonts-coordinator-summary")  # test-artifacts/: to look at


def test_a_readers_name_on_its_own_copy_reads_back() -> None:
    stats = compute(_reports(), PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)
    for team_id, name in enumerate(NAMES.values(), start=1):
        pages = pdf_pages(internal_pdf(stats, "type1", CLEARINGHOUSE, Reader(team_id, name)))
        assert name in pages[0]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (make deps)")
def test_pdftotext_reads_the_same_names(tmp_path: Path) -> None:
    """A second reader, poppler: the text is in the file, not only in pypdf's view of it."""
    path = tmp_path / "summary.pdf"
    path.write_bytes(_summary_pdf())
    text = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in NAMES.values():
        assert name in text


def test_every_pdf_draws_its_text_in_embedded_dejavu() -> None:
    stats = compute(_reports(), PERIOD, load_taxonomy(), minimum=3, secret=b"k" * 32)
    for data in (
        _summary_pdf(),
        public_pdf(stats, CLEARINGHOUSE, "as of now"),
        internal_pdf(stats, "type1", CLEARINGHOUSE, None),
        internal_pdf(stats, "type2", CLEARINGHOUSE, None),
    ):
        drawn = _drawn_fonts(data)
        # reportlab names an embedded subset "/AAAAAA+DejaVuSans" (a tag, then the name).
        assert {name.partition("+")[2] for name in drawn} == {REGULAR, BOLD}, drawn
        assert all(drawn.values()), drawn


def test_a_missing_font_is_one_line_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(ClearinghouseError) as caught:
        find("DejaVuSans.ttf", (tmp_path / "fonts",))
    message = str(caught.value)
    assert "\n" not in message
    assert "DejaVuSans.ttf" in message and str(tmp_path / "fonts") in message
    assert f"apt-get install {PACKAGE}" in message
