"""public.json: one month's public figures as JSON, described by docs/public.schema.json.

In: a `PublicMonth` (already only what may be published), the clearinghouse name and the
taxonomy the type 2 figures follow. Out: UTF-8 JSON bytes, indented, keys in a fixed
order, ending with a newline: the same month gives the same bytes.

Per report type: its title, contributing teams, whether published, and every figure in
report order with its id (the `figure` column of public.csv: a type 1 field, "total",
a class slug, "class/type", or "class/-" for the class-only line), its label, its class
for a type 2 type, its contributing teams, whether it is published and, only then, its
average twice: exact (a string: the whole decimal expansion, or "p/q" where that does
not end) and rounded half-up to two decimals (a string, as the PDF and CSV show it).

`read_public_json` reads one back, exactly (the averages are exact), for the site's index
and feed when a month is published on its own: only if it says the run, threshold and
taxonomy a computation now would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from reports.public_figures import PublicFigure, PublicMonth, PublicType

FORMAT = "clearinghouse-public-statistics/1"  # the document's own version


@dataclass(frozen=True)
class TaxonomyId:
    """Which incident taxonomy the type 2 figure ids are slugs of."""

    id: str  # "ecsirt-v2", "rsit-1.3": what `[taxonomy] canonical` names
    name: str  # "eCSIRT.net incident classification"
    version: str  # "2", "1.3"
    extended: bool = False  # the configuration added classes or types of its own


@dataclass(frozen=True)
class Expected:
    """What a month's public.json must say for its figures to be read back unchanged."""

    clearinghouse: str
    taxonomy: TaxonomyId
    minimum: int  # the publication threshold
    generated_at: datetime  # UTC: the month's run
    label: str  # the taxonomy as `PublicMonth.taxonomy` names it


def read_public_json(data: bytes, period: str, expected: Expected) -> PublicMonth | None:
    """Month `period` as `public_json` wrote it, for the index and the feed: each type's
    figures without their 12-month window. None unless the file is this format and says
    what `expected` says (another threshold, taxonomy or run means the figures are stale)."""
    header = _header(period, expected)
    try:
        document = json.loads(data)
        if {key: document.get(key) for key in header} != header:
            return None
        type1, type2 = (_read_type(t, period) for t in document["types"])
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    return PublicMonth(
        period, expected.minimum, expected.generated_at, type1, type2, expected.label
    )


def _header(period: str, expected: Expected) -> dict[str, Any]:
    """The fields of month `period`'s public.json before its figures, in their order."""
    taxonomy = expected.taxonomy
    return {
        "format": FORMAT,
        "clearinghouse": expected.clearinghouse,
        "period": period,
        "generated_at": f"{expected.generated_at:%Y-%m-%dT%H:%M:%SZ}",
        "publication_threshold": expected.minimum,
        "taxonomy": {
            "id": taxonomy.id,
            "name": taxonomy.name,
            "version": taxonomy.version,
            "extended": taxonomy.extended,
        },
    }


def _read_type(document: dict[str, Any], period: str) -> PublicType:
    figures = tuple(_read_figure(f, period) for f in document["figures"])
    return PublicType(
        document["type"],
        document["title"],
        int(document["teams"]),
        bool(document["published"]),
        figures,
        (period,),
        {figure.key: (figure,) for figure in figures},
    )


def _read_figure(document: dict[str, Any], period: str) -> PublicFigure:
    average = document["average"]
    mean = None if average is None else Fraction(average["exact"])
    depth = 0 if document["class"] is None else 1
    return PublicFigure(
        document["id"], document["label"], depth, period, int(document["teams"]), mean
    )


def public_json(month: PublicMonth, clearinghouse: str, taxonomy: TaxonomyId) -> bytes:
    made = Expected(clearinghouse, taxonomy, month.minimum, month.generated_at, month.taxonomy)
    document = {
        **_header(month.period, made),
        "types": [_type(of_type) for of_type in month.types],
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _type(of_type: PublicType) -> dict[str, Any]:
    return {
        "type": of_type.type,
        "title": of_type.title,
        "teams": of_type.teams,
        "published": of_type.published,
        "figures": [_figure(figure) for figure in of_type.figures],
    }


def _figure(figure: PublicFigure) -> dict[str, Any]:
    rounded = figure.rounded
    return {
        "id": figure.key,
        "label": figure.label,
        "class": figure.key.partition("/")[0] if figure.depth else None,
        "teams": figure.teams,
        "published": figure.published,
        "average": None
        if rounded is None
        else {"exact": figure.exact, "rounded": f"{rounded:.2f}"},
    }
