"""What every format hands the report rules: drafts of reports, their fields with lines.

In: what a text, CSV or JSON reader cut from its input. Out: `Draft`s of reports (their
type, `Field`s with their line numbers, where they came from) and a `Collector` that
gathers the reports and errors of one signed content into its `ParseOutcome`. The caps on
what a team's input may cost are here too, since every reader applies them first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parsers.fieldnames import (
    normalise_key,
)
from parsers.model import (
    ParseOutcome,
    Report,
    ReportError,
)

MAX_INPUT_BYTES = 1024 * 1024  # one text, CSV or JSON document


MAX_REPORT_LINES = 10_000


MAX_ERRORS = 100


ECHO = 60


_REPORT_TYPES = {"type1": "type1", "type-1": "type1", "type2": "type2", "type-2": "type2"}


def clip(text: str) -> str:
    """What was written, safe to quote in a reply: printable, at most ECHO characters."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text.strip()[: ECHO + 1])
    return shown if len(shown) <= ECHO else shown[: ECHO - 3] + "..."


def too_large(text: str) -> bool:
    return len(text) > MAX_INPUT_BYTES or len(text.encode("utf-8", "replace")) > MAX_INPUT_BYTES


@dataclass(frozen=True)
class Field:
    key: str
    value: str
    line: int | None


@dataclass(frozen=True)
class Draft:
    """One report as written, cut out of its document but not yet checked."""

    kind: str  # the value of `Report:`, as written
    fields: tuple[Field, ...]
    source: str
    line: int | None  # where the report starts; missing fields are reported here
    prefix: str = ""  # put before each message where lines are unknown, e.g. "report 2: "


@dataclass
class Collector:
    """Reports and errors of one signed content; at most MAX_ERRORS errors are kept."""

    errors: list[ReportError] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    overflow: bool = False
    nothing_found: bool = False
    _first: dict[tuple[str, str], str] = field(default_factory=dict)

    def error(self, source: str, line: int | None, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(ReportError(source, line, message))
        else:
            self.overflow = True

    def report(self, report: Report, line: int | None) -> None:
        first = self._first.get((report.type, report.period))
        if first is None:
            self._first[(report.type, report.period)] = (
                f"{report.source}, line {line}" if line else report.source
            )
            self.reports.append(report)
        else:
            kind = "type 1" if report.type == "type1" else "type 2"
            self.error(
                report.source,
                line,
                f"a second {kind} report for {report.period} (the first is in {first});"
                " send one report per type and month",
            )

    def outcome(self) -> ParseOutcome:
        """Errors in document order (per source, by line); reports only if there are none."""
        order = {source: n for n, source in enumerate(dict.fromkeys(e.source for e in self.errors))}
        errors = sorted(self.errors, key=lambda e: (order[e.source], e.line or 0))
        if self.overflow:
            errors.append(
                ReportError(
                    "message",
                    None,
                    f"more than {MAX_ERRORS} problems; only the first {MAX_ERRORS} are listed",
                )
            )
        if errors:
            return ParseOutcome(errors=tuple(errors), nothing_found=self.nothing_found)
        return ParseOutcome(reports=tuple(self.reports))


def report_kind(raw: str) -> str | None:
    """The report type ("type1" or "type2") a `Report:` value names, else None."""
    return _REPORT_TYPES.get(normalise_key(raw))
