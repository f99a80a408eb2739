"""Helpers for the monthly statistics tests (tests/reports/): report builders, stored
months of submissions, and PDF text extraction.

A module beside `support.py` rather than a conftest, so that the tests can import the
helpers with their types.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import Engine, update
from sqlmodel import col

from parsers.model import TYPE1_FIELDS, Type1Report, Type2Report
from store import registry, spool
from store.db import transaction
from store.models import Submission
from store.submissions import store_report

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def type1(period: str, *values: int | str) -> Type1Report:
    """A type 1 report; `values` in form order (requests, opened, ...), missing ones 0."""
    numbers = [Decimal(str(v)) for v in values] + [Decimal(0)] * (7 - len(values))
    return Type1Report(period=period, values=dict(zip(TYPE1_FIELDS, numbers, strict=True)))


def type2(period: str, counts: dict[str, int]) -> Type2Report:
    """A type 2 report from {"class" or "class/type": count} (slugs)."""
    parsed: dict[tuple[str, str | None], int] = {}
    for key, count in counts.items():
        class_slug, _, type_slug = key.partition("/")
        parsed[(class_slug, type_slug or None)] = count
    return Type2Report(period=period, counts=parsed)


def add_team(engine: Engine, handle: str, status: str = "accredited") -> int:
    """A registry row only (no key): enough for the statistics, not for mail."""
    with transaction(engine) as s:
        team = registry.add_team(
            s,
            handle=handle,
            name=f"CERT {handle.title()}",
            email=f"cert@{handle}.example",
            status=status,
            country=None,
        )
        return team.id or 0


def team_id(engine: Engine, handle: str) -> int:
    with transaction(engine) as s:
        team = registry.get_team(s, handle)
        assert team is not None and team.id is not None
        return team.id


_counter = 0


def store(
    engine: Engine,
    team: int,
    report: Type1Report | Type2Report,
    created_at: datetime | None = None,
) -> int:
    """Store `report` as team `team`'s next revision, as if accepted at `created_at`."""
    global _counter
    _counter += 1
    raw = f"Subject: {team} {report.type} {report.period} #{_counter}\r\n\r\nx\r\n".encode()
    message_id, _ = spool.spool_message(engine, raw, "smtp")
    with transaction(engine) as s:
        submission_id = store_report(s, team, report, message_id).id or 0
        if created_at is not None:  # the stored row: store_report's result is not in `s`
            s.exec(
                update(Submission)
                .where(col(Submission.id) == submission_id)
                .values(created_at=created_at)
            )
        return submission_id


def at(day: str) -> datetime:
    """ "2026-11-03" or "2026-11-03 14:00" as an aware UTC datetime."""
    fmt = "%Y-%m-%d %H:%M" if " " in day else "%Y-%m-%d"
    return datetime.strptime(day, fmt).replace(tzinfo=UTC)


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page as pypdf lays it out (a table row stays on one line), with
    runs of spaces squeezed to one."""
    pages = PdfReader(io.BytesIO(data)).pages
    return [
        "\n".join(
            " ".join(line.split())
            for line in page.extract_text(extraction_mode="layout").splitlines()
        )
        for page in pages
    ]


def pdf_text(data: bytes) -> str:
    return "\n".join(pdf_pages(data))


def row(text: str, label: str) -> str:
    """The first line of `text` that starts with `label` (a table row, read left to right)."""
    found = [line for line in text.splitlines() if line.startswith(label)]
    assert found, f"no line starts with {label!r}:\n{text}"
    return found[0]


def render_png(data: bytes, name: str, *, dpi: int = 70) -> list[Path]:
    """Pages as PNG under test-artifacts/ (for people to look at); [] without pdftoppm."""
    if shutil.which("pdftoppm") is None:
        return []
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / f"{name}.pdf"
    pdf.write_bytes(data)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(ARTIFACTS / name)],
        check=True,
        capture_output=True,
    )
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))
