"""Validated report records: what the parsers produce and the store keeps.

Parsers turn untrusted text into these values or into `ReportError`s; they never
raise for bad input. The pipeline stores `Type1Report`/`Type2Report` and shows
`ReportError`s to the team in the error reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ReportType = Literal["type1", "type2"]

# Canonical type 1 field names, in the order of the original form.
TYPE1_FIELDS: tuple[str, ...] = (
    "requests",
    "incidents-opened",
    "incidents-closed",
    "inbound-communication",
    "outbound-communication",
    "organisations-involved",
    "hours-spent",
)


@dataclass(frozen=True)
class ReportError:
    """One problem in one report, located so that a person can fix it."""

    source: str  # "body", or the attachment's filename
    line: int | None  # 1-based line (CSV row, JSON: None unless known)
    message: str  # plain English, safe to mail back to the team

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line else self.source
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Type1Report:
    period: str  # "YYYY-MM"
    values: dict[str, Decimal]  # every key of TYPE1_FIELDS; integers except hours-spent
    source: str = "body"
    claimed_team: str | None = None  # a `Team:` line, never trusted

    type: ReportType = field(default="type1", init=False)


@dataclass(frozen=True)
class Classification:
    """An incident class/type in one vocabulary, e.g. rsit-1.3 malicious-code/c2-server."""

    vocabulary: str  # "ecsirt-v2" | "rsit-1.3" (parsers.taxonomy)
    class_slug: str
    type_slug: str | None = None  # None: the class-only line

    @property
    def target(self) -> tuple[str, str | None]:
        return (self.class_slug, self.type_slug)

    @property
    def key(self) -> str:
        """ "class" or "class/type", as stored values and listings show it."""
        return self.class_slug if self.type_slug is None else f"{self.class_slug}/{self.type_slug}"


@dataclass(frozen=True)
class CountLine:
    """One type 2 count: what the team sent, and what it counts as in the canonical
    vocabulary (`exact` False: a coarser category, the mapping says less than was sent)."""

    sent: Classification
    counts_as: Classification
    count: int
    exact: bool = True


@dataclass(frozen=True)
class Type2Report:
    period: str
    # What counts: canonical (class slug, type slug or None for class-only) -> total
    counts: dict[tuple[str, str | None], int]
    source: str = "body"
    claimed_team: str | None = None
    # Each line as sent, in report order; empty: sent as `counts`, in `taxonomy`.
    lines: tuple[CountLine, ...] = ()
    taxonomy: str = "ecsirt-v2"  # the canonical vocabulary `counts` is in

    type: ReportType = field(default="type2", init=False)

    def count_lines(self) -> tuple[CountLine, ...]:
        """`lines`, or for a report built from counts alone: each count sent as counted."""
        if self.lines:
            return self.lines
        return tuple(
            CountLine(Classification(self.taxonomy, *key), Classification(self.taxonomy, *key), n)
            for key, n in self.counts.items()
        )


Report = Type1Report | Type2Report


@dataclass(frozen=True)
class ParseOutcome:
    """Everything found in one signed content: reports if all valid, else errors."""

    reports: tuple[Report, ...] = ()
    errors: tuple[ReportError, ...] = ()
    # Added: the content held no report at all (reason `parse-error`); `errors` then holds
    # the one "no report found" error. False for reports with errors (`invalid-report`).
    nothing_found: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.reports) and not self.errors
