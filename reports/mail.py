"""Render the text of every outgoing mail from its jinja2 template.

In: plain values (team, stored values, errors). Out: a subject and a body string. No
crypto and no database here: `keys/wrap.py` seals what this produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - plain-text mail bodies, never HTML
    keep_trailing_newline=True,
    trim_blocks=False,
)


@dataclass(frozen=True)
class StoredItem:
    """One stored report as the receipt shows it."""

    type: str
    period: str
    submission_id: int
    revision: int
    superseded_id: int | None
    source: str
    values: list[tuple[str, str]]
    claimed_team: str | None  # shown only when it differs from the signing team


def format_value(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"
    return str(value)


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(f"{template}.txt.j2").render(**context)


def receipt_subject(items: list[StoredItem]) -> str:
    what = ", ".join(f"{i.type} {i.period} rev. {i.revision}" for i in items)
    return f"Receipt: stored {what}"


SUBJECTS = {
    "rejection": "Not stored: your report has errors",
    "duplicate": "Duplicate: already stored",
    "quarantine": "Not accepted: your message was quarantined",
    "command-error": "Unknown command",
}
