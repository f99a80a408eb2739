"""Render the text of every outgoing mail from its jinja2 templates.

In: a `Letter` (the table below: every kind of mail the gateway writes, with its outbox
kind, its subject and its body template) and plain values (team, stored values, errors).
Out: a subject and a body string. No crypto and no database here: `keys/wrap.py` seals
what this produces. A new kind of mail is one row here and one template file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

import jinja2

from contract.codes import MailKind

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - plain-text mail bodies, never HTML
    keep_trailing_newline=True,
    trim_blocks=False,
)


class ShownValue(NamedTuple):
    """One stored value as a receipt or a status reply lists it."""

    label: str  # type 1: the field; type 2: the class/type as sent (`taxonomy_labels`)
    value: str
    counts_as: str | None = None  # type 2: what it counts as, where that differs


@dataclass(frozen=True)
class StoredItem:
    """One stored report as the receipt shows it."""

    type: str
    period: str
    submission_id: int
    revision: int
    superseded_id: int | None
    source: str
    values: list[ShownValue]
    claimed_team: str | None  # shown only when it differs from the signing team

    @property
    def summary(self) -> str:
        return f"{self.type} {self.period} rev. {self.revision}"


def format_value(value: Decimal | int) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value == value.to_integral() else f"{value:f}"
    return str(value)


@dataclass(frozen=True)
class Letter:
    """One kind of outgoing mail: what the outbox calls it, its subject, its body."""

    kind: MailKind
    subject: str  # a jinja2 template over the same context as the body
    template: str  # the body: reports/templates/TEMPLATE.txt.j2


RECEIPT = Letter(
    MailKind.RECEIPT,
    "Receipt: stored {{ stored | map(attribute='summary') | join(', ') }}",
    "receipt",
)
REJECTION = Letter(MailKind.REJECTION, "Not stored: your report has errors", "rejection")
DUPLICATE = Letter(MailKind.DUPLICATE, "Duplicate: already stored", "duplicate")
QUARANTINE = Letter(MailKind.QUARANTINE, "Not accepted: your message was quarantined", "quarantine")
COMMAND_TEMPLATE = Letter(MailKind.COMMAND, "Template: {{ report_type }}", "command_template")
COMMAND_STATUS = Letter(MailKind.COMMAND, "Status: {{ period }}", "command_status")
COMMAND_ERROR = Letter(MailKind.COMMAND_ERROR, "Unknown command", "command_error")
MONTHLY_TEAM = Letter(
    MailKind.MONTHLY, "{{ clearinghouse }}: statistics for {{ month }}", "monthly-team"
)
MONTHLY_COORDINATOR = Letter(
    MailKind.MONTHLY,
    "{{ clearinghouse }}: coordinator summary for {{ month }}",
    "monthly-coordinator",
)
REMINDER = Letter(MailKind.REMINDER, "Reminder: statistics for {{ month }}", "reminder")
KEY_EXPIRY = Letter(
    MailKind.KEY_EXPIRY, "Your key expires on {{ expires.strftime('%Y-%m-%d') }}", "key_expiry"
)
WELCOME = Letter(MailKind.WELCOME, "Welcome to {{ clearinghouse }}: how to send", "welcome")

LETTERS = (
    RECEIPT,
    REJECTION,
    DUPLICATE,
    QUARANTINE,
    COMMAND_TEMPLATE,
    COMMAND_STATUS,
    COMMAND_ERROR,
    MONTHLY_TEAM,
    MONTHLY_COORDINATOR,
    REMINDER,
    KEY_EXPIRY,
    WELCOME,
)


def write(letter: Letter, **context: Any) -> tuple[str, str]:
    """The letter's subject and body, rendered with `context`."""
    subject = _subject(letter.subject).render(**context)
    return subject, _ENV.get_template(f"{letter.template}.txt.j2").render(**context)


@cache
def _subject(source: str) -> jinja2.Template:
    # Compiled once a kind, not once a mail (compiling cost 0.37 ms a mail).
    return _ENV.from_string(source)
