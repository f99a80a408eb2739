"""Type 2 counts as stored: each one as the team sent it and as what it was counted.

In: a validated `Type2Report` (its count lines), or `type2count` rows read back. Out: the
rows to insert, `StoredCount` values for listings and statistics, and the totals per
"class" or "class/type" that receipts and listings show, counted in the canonical
vocabulary given (recounted from what was sent when the canonical vocabulary changed
since the count was stored).

Every row keeps what was sent (`sent_taxonomy`, `sent_class`, `sent_type`) and what it
counted as when stored (`taxonomy`, `class_slug`, `type_slug`); rows stored before RSIT
became a vocabulary of its own were sent, and counted, in eCSIRT.net v2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement

from parsers.model import Classification, Type2Report
from parsers.taxonomy import Taxonomy
from store.models import Type2Count, table_of

TABLE = table_of(Type2Count)
# The columns a `StoredCount` is read from, in its constructor's order (after the id).
COLUMNS: tuple[ColumnElement[Any], ...] = (
    TABLE.c.sent_taxonomy,
    TABLE.c.sent_class,
    TABLE.c.sent_type,
    TABLE.c.taxonomy,
    TABLE.c.class_slug,
    TABLE.c.type_slug,
    TABLE.c.count,
)


@dataclass(frozen=True)
class StoredCount:
    """One stored type 2 count: as sent, and as counted when it was stored."""

    sent: Classification
    counted: Classification
    count: int

    @classmethod
    def of_row(cls, row: Iterable[Any]) -> StoredCount:
        """From the values of `COLUMNS`, in that order."""
        sent_taxonomy, sent_class, sent_type, taxonomy, class_slug, type_slug, count = row
        return cls(
            _interned(sent_taxonomy, sent_class, sent_type),
            _interned(taxonomy, class_slug, type_slug),
            int(count),
        )

    def as_json(self) -> dict[str, object]:
        """How `submissions list --json` shows it."""
        return {
            "sent": _classification(self.sent),
            "counts_as": _classification(self.counted),
            "count": self.count,
        }

    def recounted(self, taxonomy: Taxonomy) -> StoredCount:
        """The same count, counted in `taxonomy`'s canonical vocabulary from what was sent
        (as the statistics count it; what was stored only where what was sent is gone)."""
        match = taxonomy.counts_as(self.sent, self.counted)
        return StoredCount(self.sent, match.counts_as, self.count)


@lru_cache(maxsize=4096)
def _interned(vocabulary: str, class_slug: str, type_slug: str | None) -> Classification:
    # A statistics window reads hundreds of thousands of rows naming a few dozen
    # categories: one shared value per category instead of one per row.
    return Classification(vocabulary, class_slug, type_slug)


def _classification(found: Classification) -> dict[str, object]:
    return {"taxonomy": found.vocabulary, "class": found.class_slug, "type": found.type_slug}


def rows_of(report: Type2Report, submission_id: int) -> list[dict[str, object]]:
    """The `type2count` rows of a report, one per line as sent, in report order."""
    return [
        {
            "submission_id": submission_id,
            "sent_taxonomy": line.sent.vocabulary,
            "sent_class": line.sent.class_slug,
            "sent_type": line.sent.type_slug,
            "taxonomy": line.counts_as.vocabulary,
            "class_slug": line.counts_as.class_slug,
            "type_slug": line.counts_as.type_slug,
            "count": line.count,
        }
        for line in report.count_lines()
    ]


def stored_counts(report: Type2Report) -> tuple[StoredCount, ...]:
    """What `rows_of` stores, as read back."""
    return tuple(
        StoredCount(line.sent, line.counts_as, line.count) for line in report.count_lines()
    )


def totals(counts: Iterable[StoredCount], taxonomy: Taxonomy | None = None) -> dict[str, int]:
    """ "class" or "class/type" -> count, in order of first appearance; in `taxonomy`'s
    canonical vocabulary when given, else as counted when stored. Counts that count as
    the same class/type (two RSIT types under one eCSIRT class) are added."""
    found: dict[str, int] = {}
    for stored in counts:
        counted = stored.counted if taxonomy is None else stored.recounted(taxonomy).counted
        found[counted.key] = found.get(counted.key, 0) + stored.count
    return found
