"""The frame every statistics PDF shares: title page, running header, "page N of M".

In: a `DocumentMeta` (clearinghouse name, title, period, classification, facts for the
title page) and the body's flowables. Out: PDF bytes. Output is deterministic: the
document is built with reportlab's `invariant` mode (fixed creation date and file ID),
and nothing here reads the clock, so identical input gives identical bytes.

Layout: A4 portrait. The title page carries a band with the clearinghouse name, the
title, the period, the classification and a table of facts; every later page a header
line (name | title, period); every page a footer (classification | page N of M).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Spacer,
    Table,
    TableStyle,
)

from reports.fonts import BOLD, REGULAR
from reports.layout import (
    ACCENT,
    BODY_WIDTH,
    MARGIN,
    MARK,
    MUTED,
    NAVY,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RULE,
    STYLES,
    name,
    p,
)
from reports.periods import month_name

# reportlab's settings are process-wide; these two are for every PDF rendered here.
# shapeChecking validates each attribute set on a chart shape against its declared type:
# a development aid (reportlab: "set to zero to avoid generic shape checking") that cost
# a fifth of the time of the charts with one bar per team. ASCII85 stream encoding
# keeps a PDF 7-bit clean, which nothing here needs (files are written as bytes, and
# mailed as base64 MIME parts inside OpenPGP); without it they are a fifth smaller and
# quicker to write. Page content is compressed (Flate) as before.
rl_config.shapeChecking = 0
rl_config.useA85 = 0


@dataclass(frozen=True)
class DocumentMeta:
    clearinghouse: str
    title: str  # "Public statistics"
    period: str
    classification: str  # "PUBLIC", "CONFIDENTIAL: ..."
    facts: Sequence[tuple[str, str]] = field(default_factory=tuple)
    introduction: str = ""  # plain text under the facts


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
    head = STYLES["head"]
    width = stringWidth(text, head.fontName, head.fontSize) + 18
    badge = Table([[p(text, "head")]], colWidths=[width], hAlign="LEFT")
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
    canvas.setFont(BOLD, 22)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 2.3 * cm, name(meta.clearinghouse))
    canvas.setFont(REGULAR, 10.5)
    canvas.drawString(MARGIN, PAGE_HEIGHT - 3.1 * cm, "CSIRT statistics clearinghouse")
    canvas.restoreState()


def _running_header(canvas: Canvas, meta: DocumentMeta) -> None:
    canvas.saveState()
    top = PAGE_HEIGHT - MARGIN + 0.5 * cm
    canvas.setFont(BOLD, 8.5)
    canvas.setFillColor(NAVY)
    canvas.drawString(MARGIN, top, name(meta.clearinghouse))
    canvas.setFont(REGULAR, 8.5)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(PAGE_WIDTH - MARGIN, top, f"{meta.title} · {month_name(meta.period)}")
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN, top - 5, PAGE_WIDTH - MARGIN, top - 5)
    canvas.restoreState()


def _numbered_canvas(meta: DocumentMeta) -> type[Canvas]:
    """A canvas that holds pages back until the end, to print "page N of M" on each."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
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
            self.setFont(REGULAR, 8)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, MARGIN - 1.0 * cm, meta.classification)
            self.drawRightString(PAGE_WIDTH - MARGIN, MARGIN - 1.0 * cm, f"page {page} of {total}")
            self.restoreState()

    return NumberedCanvas
