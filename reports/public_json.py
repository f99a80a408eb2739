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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


def public_json(month: PublicMonth, clearinghouse: str, taxonomy: TaxonomyId) -> bytes:
    document = {
        "format": FORMAT,
        "clearinghouse": clearinghouse,
        "period": month.period,
        "generated_at": f"{month.generated_at:%Y-%m-%dT%H:%M:%SZ}",
        "publication_threshold": month.minimum,
        "taxonomy": {
            "id": taxonomy.id,
            "name": taxonomy.name,
            "version": taxonomy.version,
            "extended": taxonomy.extended,
        },
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
