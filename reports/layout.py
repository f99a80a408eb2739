"""The look shared by every statistics PDF: palette, page geometry, paragraph styles,
number formats, and the data table and notice box the documents are built from.

In: plain strings and numbers. Out: reportlab flowables, set in DejaVu Sans
(`reports/fonts.py`) so that text in any European script renders. Text from outside
(team names) goes through `p`, which escapes it; `markup` is for markup built in this
package only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from reports.fonts import BOLD, REGULAR, register

NAVY = colors.HexColor("#1F3A5F")
ACCENT = colors.HexColor("#2E86AB")
MARK = colors.HexColor("#F18F01")  # the reader's own team
MARK_LIGHT = colors.HexColor("#FDEBD0")
STRIPE = colors.HexColor("#F1F4F8")
RULE = colors.HexColor("#C8D1DC")
MUTED = colors.HexColor("#5B6770")

# Every PDF module imports this one: the font is registered before any text is measured.
register()

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 2 * cm
BODY_WIDTH = PAGE_WIDTH - 2 * MARGIN

_BASE = ParagraphStyle("base", fontName=REGULAR, fontSize=9.5, leading=13)
STYLES = {
    "body": _BASE,
    "note": ParagraphStyle("note", _BASE, fontSize=8.5, leading=11, textColor=MUTED),
    "h1": ParagraphStyle(
        "h1",
        _BASE,
        fontName=BOLD,
        fontSize=15,
        leading=19,
        textColor=NAVY,
        spaceBefore=4,
        spaceAfter=8,
    ),
    "h2": ParagraphStyle(
        "h2",
        _BASE,
        fontName=BOLD,
        fontSize=11.5,
        leading=15,
        textColor=NAVY,
        spaceBefore=10,
        spaceAfter=5,
    ),
    "title": ParagraphStyle("title", _BASE, fontName=BOLD, fontSize=26, leading=32, textColor=NAVY),
    "subtitle": ParagraphStyle("subtitle", _BASE, fontSize=16, leading=22, textColor=ACCENT),
    "cell": ParagraphStyle("cell", _BASE, fontSize=8.5, leading=10.5),
    "cell-bold": ParagraphStyle("cell-bold", _BASE, fontName=BOLD, fontSize=8.5, leading=10.5),
    # DejaVu Sans runs wider than Helvetica did: at 7.5 pt the longest word of a heading
    # ("Outbound") still fits the narrow number columns of the internal type 1 table.
    "head": ParagraphStyle(
        "head", _BASE, fontName=BOLD, fontSize=7.5, leading=9.5, textColor=colors.white
    ),
    "head-right": ParagraphStyle(
        "head-right",
        _BASE,
        fontName=BOLD,
        fontSize=7.5,
        leading=9.5,
        textColor=colors.white,
        alignment=TA_RIGHT,
    ),
}


_HEAD = STYLES["head"]
_CELL_PADDING = 6  # reportlab's default left and right padding of a table cell


NAME_SHOWN = 200  # characters of a name a PDF shows (the registry allows no more)


def name(text: str) -> str:
    """A stored name as a PDF shows it: on one line, control characters as spaces, and
    at most NAME_SHOWN characters (a name stored before names had a limit could hold
    thousands without a space, and a table cell cannot grow taller than a page)."""
    flat = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    return flat if len(flat) <= NAME_SHOWN else flat[: NAME_SHOWN - 1] + "…"


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


def chunked(
    header: Sequence[str],
    rows: Sequence[Sequence[str | Paragraph]],
    widths: Sequence[float],
    *,
    size: int = 35,
    numeric_from: int = 1,
) -> list[Flowable]:
    """A long table as several tables of `size` rows, each with its header.

    reportlab measures the whole rest of a table again at every page break it splits, so
    one table of a thousand teams costs quadratic time; page-sized pieces keep it linear.
    """
    return [
        table(header, rows[start : start + size], widths, numeric_from=numeric_from)
        for start in range(0, len(rows), size)
    ]


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

    Cells are Paragraphs (markup, wrapping) or plain strings, which are drawn as they
    are: no markup, so nothing to escape.

    `marked` rows (0-based, body rows) and `marked_columns` are the reader's own team:
    highlighted and bold.
    The last `footer_rows` rows (averages) are set off by a rule and bold type.
    """
    head = [
        _heading(h, width, right=i >= numeric_from)
        for i, (h, width) in enumerate(zip(header, widths, strict=True))
    ]
    style: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), NAVY),
        ("FONT", (0, 0), (-1, 0), _HEAD.fontName, _HEAD.fontSize, _HEAD.leading),
        ("TEXTCOLOR", (0, 0), (-1, 0), _HEAD.textColor),
        ("FONT", (0, 1), (-1, -1), REGULAR, 8.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 3.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
        ("BOX", (0, 0), (-1, -1), 0.5, NAVY),
    ]
    for index in range(len(rows)):
        if index % 2 == 1:
            style.append(("BACKGROUND", (0, index + 1), (-1, index + 1), STRIPE))
    for index in bold:
        style.append(("FONT", (0, index + 1), (-1, index + 1), BOLD, 8.5))
    for index in indented:
        style.append(("LEFTPADDING", (0, index + 1), (0, index + 1), 16))
    if footer_rows:
        first = len(rows) - footer_rows + 1
        style.append(("LINEABOVE", (0, first), (-1, first), 1, NAVY))
        style.append(("FONT", (0, first), (-1, -1), BOLD, 8.5))
    for index in marked:
        style.append(("BACKGROUND", (0, index + 1), (-1, index + 1), MARK_LIGHT))
        style.append(("FONT", (0, index + 1), (-1, index + 1), BOLD, 8.5))
        style.append(("LINEBEFORE", (0, index + 1), (0, index + 1), 3, MARK))
    for index in marked_columns:
        style.append(("BACKGROUND", (index, 1), (index, -1), MARK_LIGHT))
        style.append(("FONT", (index, 1), (index, -1), BOLD, 8.5))
        style.append(("LINEBELOW", (index, 0), (index, 0), 3, MARK))
    result = Table([head, *rows], colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    result.setStyle(TableStyle(style))
    return result


def _heading(text: str, width: float, *, right: bool) -> str | Paragraph:
    """A column heading: plain text where it fits on one line, else a wrapping paragraph.

    Plain text looks the same (the header row's FONT and TEXTCOLOR match the "head"
    style), and the table draws it directly; a Paragraph is measured again each time a
    table is wrapped or split, and split tables repeat their header on every page.
    """
    if stringWidth(text, _HEAD.fontName, _HEAD.fontSize) <= width - 2 * _CELL_PADDING:
        return text
    return Paragraph(escape(text), STYLES["head-right" if right else "head"])


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
