"""How outputs name the type 2 taxonomy: receipt and status lines that show what was sent
and what it counts as, and the taxonomy with its version for the CSV and the PDFs.

In: count lines of a parsed report (`CountLine`) or stored counts (`StoredCount`) and
type 1 values, the taxonomy, or a `MonthlyStatistics`. Out: plain strings and small
values (`ShownValue` for the mail templates) for the templates and writers. Pure: no
database, no files.

A count sent in the canonical vocabulary, counting as itself, is shown as always
("Malicious Code / Virus: 12"); any other count says what it was sent as, in which
vocabulary, and what it counts as ("Malicious Code / Infected System (RSIT 1.3): 6,
counts as Malicious Code, type not given (eCSIRT.net v2)").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from parsers.model import Classification, CountLine
from parsers.taxonomy import Taxonomy
from reports.mail import ShownValue, format_value
from reports.statistics import MonthlyStatistics
from store.type2 import StoredCount

TAXONOMY_COLUMN = "taxonomy"  # public.csv: the vocabulary a type 2 figure is in


@dataclass(frozen=True)
class ShownCount:
    """One count as a receipt or a status reply shows it."""

    label: str  # as sent, with its vocabulary where that is not the canonical one
    count: int
    counts_as: str | None  # what it counts as, where that differs from what was sent
    exact: bool  # False: counts_as says less than was sent

    def text(self) -> str:
        shown = f"{self.label}: {self.count}"
        return shown if self.counts_as is None else f"{shown}, counts as {self.counts_as}"


def shown_counts(counts: Iterable[CountLine | StoredCount], taxonomy: Taxonomy) -> list[ShownCount]:
    """Each count as sent, and what it counts as in the canonical vocabulary.

    Stored counts are recounted from what was sent, as the statistics count them.
    """
    shown: list[ShownCount] = []
    for count in counts:
        match = taxonomy.counts_as(count.sent, _counted(count))
        label = _label(taxonomy, count.sent)
        if match.counts_as == count.sent:
            shown.append(ShownCount(label, count.count, None, True))
            continue
        if count.sent.vocabulary != taxonomy.canonical:
            label += f" ({taxonomy.vocabulary(count.sent.vocabulary).name})"
        counted = _label(taxonomy, match.counts_as)
        if match.counts_as.type_slug is None and count.sent.type_slug is not None:
            counted += ", type not given"
        counted += f" ({taxonomy.canonical_vocabulary.name})"
        shown.append(ShownCount(label, count.count, counted, match.exact))
    return shown


def shown_values(
    values: Mapping[str, Decimal] | Mapping[str, int],
    counts: Iterable[CountLine | StoredCount],
    taxonomy: Taxonomy,
) -> list[ShownValue]:
    """What a receipt or a status reply lists for one report: for type 2 (`counts`), each
    count as sent and what it counts as where that differs; for type 1 each field."""
    shown = [ShownValue(s.label, str(s.count), s.counts_as) for s in shown_counts(counts, taxonomy)]
    return shown or [ShownValue(key, format_value(value)) for key, value in values.items()]


def _counted(count: CountLine | StoredCount) -> Classification:
    return count.counts_as if isinstance(count, CountLine) else count.counted


def _label(taxonomy: Taxonomy, found: Classification) -> str:
    if found.vocabulary in taxonomy.ids():
        return taxonomy.vocabulary(found.vocabulary).label_of(found.target)
    return found.key  # a vocabulary no longer shipped: its slugs


def taxonomy_caption(stats: MonthlyStatistics) -> str:
    """The sentence PDFs put above the type 2 figures."""
    return f"Incident classes and types: {stats.taxonomy_label or stats.taxonomy}."


def taxonomy_cell(stats: MonthlyStatistics, report_type: str) -> str:
    """The `taxonomy` column of public.csv: the vocabulary id (with its version) of a
    type 2 figure, e.g. "rsit-1.3"; empty for type 1 figures."""
    return stats.taxonomy if report_type == "type2" else ""
