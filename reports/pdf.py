"""The frame every statistics PDF shares: title page, running header, "page N of M",
styles, tables and number formats (reportlab platypus).

In: a `DocumentMeta` (clearinghouse name, title, period, classification, facts for the
title page) and the body's flowables. Out: PDF bytes. Output is deterministic: the
document is built with reportlab's `invariant` mode (fixed creation date and file ID),
and nothing here reads the clock, so identical input gives identical bytes.

Layout: A4 portrait. The title page carries a band with the clearinghouse name, the
title, the period, the classification and a table of facts; every later page a header
line (name | title, period) and a footer (classification | page N of M).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from reports.periods import month_name

NAVY = colors.HexColor("#1F3A5F")
ACCENT = colors.HexColor("#2E86AB")
MARK = colors.HexColor("#F18F01")  # the reader's own team
MARK_LIGHT = colors.HexColor("#FDEBD0")
STRIPE = colors.HexColor("#F1F4F8")
RULE = colors.HexColor("#C8D1DC")
MUTED = colors.HexColor("#5B6770")

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 2 * cm
BODY_WIDTH = PAGE_WIDTH - 2 * MARGIN

_BASE = ParagraphStyle("base", fontName="Helvetica", fontSize=9.5, leading=13)
STYLES = {
    "body": _BASE,
    "note": ParagraphStyle("note", _BASE, fontSize=8.5, leading=11, textColor=MUTED),
    "h1": ParagraphStyle(
        "h1",
        _BASE,
        fontName="Helvetica-Bold",
        fontSize=15,
        leading=19,
        textColor=NAVY,
        spaceBefore=4,
        spaceAfter=8,
    ),
    "h2": ParagraphStyle(
        "h2",
        _BASE,
        fontName="Helvetica-Bold",
        fontSize=11.5,
        leading=15,
        textColor=NAVY,
        spaceBefore=10,
        spaceAfter=5,
    ),
    "title": ParagraphStyle(
        "title", _BASE, fontName="Helvetica-Bold", fontSize=26, leading=32, textColor=NAVY
    ),
    "subtitle": ParagraphStyle("subtitle", _BASE, fontSize=16, leading=22, textColor=ACCENT),
    "cell": ParagraphStyle("cell", _BASE, fontSize=8.5, leading=10.5),
    "cell-bold": ParagraphStyle(
        "cell-bold", _BASE, fontName="Helvetica-Bold", fontSize=8.5, leading=10.5
    ),
    "head": ParagraphStyle(
        "head", _BASE, fontName="Helvetica-Bold", fontSize=8, leading=10, textColor=colors.white
    ),
    "head-right": ParagraphStyle(
        "head-right",
        _BASE,
        fontName="Helvetica-Bold",
        fontSize=8,
        leading=10,
        textColor=colors.white,
        alignment=TA_RIGHT,
    ),
}


@dataclass(frozen=True)
class DocumentMeta:
    clearinghouse: str
    title: str  # "Public statistics"
    period: str
    classification: str  # "PUBLIC", "CONFIDENTIAL: ..."
    facts: Sequence[tuple[str, str]] = field(default_factory=tuple)
    introduction: str = ""  # plain text under the facts


def p(text: str, style: str = "body") -> Paragraph:
    """A paragraph of plain text (escaped: team names may hold '&' or '<')."""
    return Paragraph(escape(text), STYLES[style])


def markup(text: str, style: str = "body") -> Paragraph:
    """A paragraph of trusted reportlab markup (<b>, <font>): built here, never input."""
    return Paragraph(text, STYLES[style])


def number(value: Decimal | int) -> str:
    """1204 -> "1,204"; 940.5 -> "940.5": as stored, with thousands separators."""
    exact = Decimal(value).normalize()
    if exact == exact.to_integral_value():
        return f"{int(exact):,}"
    return f"{exact:,f}"


def average(value: Decimal | None) -> str:
    """A rounded average: always two decimals, "1,204.33"."""
    return "–" if value is None else f"{value:,.2f}"


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str | Paragraph]],
    widths: Sequence[float],
    *,
    numeric_from: int = 1,
    marked: Sequence[int] = (),
    bold: Sequence[int] = (),
    indented: Sequence[int] = (),
    footer_rows: int = 0,
    marked_columns: Sequence[int] = (),
) -> Table:
    """A data table: navy header, striped rows, numbers right-aligned from a column on.

    `marked` rows (0-based, body rows) and `marked_columns` are the reader's own team:
    highlighted and bold.
    The last `footer_rows` rows (averages) are set off by a rule and bold type.
    """
    head = [
        Paragraph(escape(h), STYLES["head" if i < numeric_from else "head-right"])
        for i, h in enumerate(header)
    ]
    body = [[cell if isinstance(cell, Paragraph) else escape(cell) for cell in row] for row in rows]
    style: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 3.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("BOX", (0, 0), (-1, -1), 0.5, NAVY),
    ]
    for index in range(len(rows)):
        if index % 2 == 1:
            style.append(("BACKGROUND", (0, index + 1), (-1, index + 1), STRIPE))
    for index in bold:
        style.append(("FONT", (0, index + 1), (-1, index + 1), "Helvetica-Bold", 8.5))
    for index in indented:
        style.append(("LEFTPADDING", (0, index + 1), (0, index + 1), 16))
    if footer_rows:
        first = len(rows) - footer_rows + 1
        style.append(("LINEABOVE", (0, first), (-1, first), 1, NAVY))
        style.append(("FONT", (0, first), (-1, -1), "Helvetica-Bold", 8.5))
    for index in marked:
        style.append(("BACKGROUND", (0, index + 1), (-1, index + 1), MARK_LIGHT))
        style.append(("FONT", (0, index + 1), (-1, index + 1), "Helvetica-Bold", 8.5))
        style.append(("LINEBEFORE", (0, index + 1), (0, index + 1), 3, MARK))
    for index in marked_columns:
        style.append(("BACKGROUND", (index, 1), (index, -1), MARK_LIGHT))
        style.append(("FONT", (index, 1), (index, -1), "Helvetica-Bold", 8.5))
        style.append(("LINEBELOW", (index, 0), (index, 0), 3, MARK))
    result = Table([head, *body], colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    result.setStyle(TableStyle(style))
    return result


def notice(text: str) -> Table:
    """A boxed remark, e.g. that a figure is not published."""
    box = Table([[p(text, "body")]], colWidths=[BODY_WIDTH], hAlign="LEFT")
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), STRIPE),
                ("LINEBEFORE", (0, 0), (0, -1), 3, ACCENT),
                ("LEFTPADDING", (0, 0), (-1, -1), 10),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return box


def render(meta: DocumentMeta, body: Sequence[Flowable]) -> bytes:
    """The whole document: title page, then `body`, numbered "page N of M"."""
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + 0.4 * cm,
        bottomMargin=MARGIN,
        title=f"{meta.clearinghouse}: {meta.title}, {month_name(meta.period)}",
        author=meta.clearinghouse,
        subject=f"{meta.title} for {meta.period}",
        creator=meta.clearinghouse,
        invariant=1,
    )
    frame = Frame(MARGIN, MARGIN, BODY_WIDTH, PAGE_HEIGHT - 2 * MARGIN - 0.4 * cm, id="body")
    title_frame = Frame(MARGIN, MARGIN, BODY_WIDTH, PAGE_HEIGHT - MARGIN - 6 * cm, id="title")
    doc.addPageTemplates(
        [
            PageTemplate("title", [title_frame], onPage=lambda c, d: _title_band(c, meta)),
            PageTemplate("body", [frame], onPage=lambda c, d: _running_header(c, meta)),
        ]
    )
    story: list[Flowable] = [*_title_page(meta), NextPageTemplate("body"), PageBreak(), *body]
    doc.build(story, canvasmaker=_numbered_canvas(meta))
    return buffer.getvalue()


def _title_page(meta: DocumentMeta) -> list[Flowable]:
    flow: list[Flowable] = [
        p(meta.title, "title"),
        Spacer(1, 6),
        p(month_name(meta.period), "subtitle"),
        Spacer(1, 14),
        _classification(meta.classification),
        Spacer(1, 22),
    ]
    if meta.facts:
        facts = Table(
            [[p(k, "cell-bold"), p(v, "cell")] for k, v in meta.facts],
            colWidths=[5 * cm, BODY_WIDTH - 5 * cm],
            hAlign="LEFT",
        )
        facts.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                    ("LINEABOVE", (0, 0), (-1, 0), 0.75, NAVY),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ]
            )
        )
        flow += [facts, Spacer(1, 18)]
    for paragraph in meta.introduction.split("\n\n"):
        if paragraph.strip():
            flow += [p(paragraph.strip(), "note"), Spacer(1, 6)]
    return flow


def _classification(text: str) -> Table:
    badge = Table([[p(text, "head")]], hAlign="LEFT")
    public = text.upper().startswith("PUBLIC")
    badge.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), ACCENT if public else colors.HexColor("#A23B3B")),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    return badge


def _title_band(canvas: Canvas, meta: DocumentMeta) -> None:
    canvas.saveState()
    canvas.setFillColor(NAVY)
    canvas.rect(0, PAGE_HEIGHT - 4.2 * cm, PAGE_WIDTH, 4.2 * cm, stroke=0, fill=1)
    canvas.setFillColor(MARK)
    canvas.rect(0, PAGE_HEIGHT - 4.4 * cm, PAGE_WIDTH, 0.2 * cm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 2.3 * cm, meta.clearinghouse)
    canvas.setFont("Helvetica", 10.5)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 3.1 * cm, "CSIRT statistics clearinghouse")
    canvas.restoreState()


def _running_header(canvas: Canvas, meta: DocumentMeta) -> None:
    canvas.saveState()
    top = PAGE_HEIGHT - MARGIN + 0.5 * cm
    canvas.setFont("Helvetica-Bold", 8.5)
    canvas.setFillColor(NAVY)
    canvas.drawString(MARGIN, top, meta.clearinghouse)
    canvas.setFont("Helvetica", 8.5)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(PAGE_WIDTH - MARGIN, top, f"{meta.title} · {month_name(meta.period)}")
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, top - 5, PAGE_WIDTH - MARGIN, top - 5)
    canvas.restoreState()


def _numbered_canvas(meta: DocumentMeta) -> type[Canvas]:
    """A canvas that holds pages back until the end, to print "page N of M" on each."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number_, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._footer(number_, total)
                Canvas.showPage(self)
            Canvas.save(self)

        def _footer(self, page: int, total: int) -> None:
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, MARGIN - 0.6 * cm, PAGE_WIDTH - MARGIN, MARGIN - 0.6 * cm)
            self.setFont("Helvetica", 8)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, MARGIN - 1.0 * cm, meta.classification)
            self.drawRightString(PAGE_WIDTH - MARGIN, MARGIN - 1.0 * cm, f"page {page} of {total}")
            self.restoreState()

    return NumberedCanvas
