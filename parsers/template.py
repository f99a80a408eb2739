"""Blank reports: what `clearinghouse template` prints and the `template` mail command sends.

In: a report type, the taxonomy, optionally a period and (type 2) the vocabulary to name
classes and types in: "ecsirt-v2" or "rsit-1.3", by default the canonical one. Out: report
text in the format of docs/reference.md that the text parser accepts once every count is filled in;
a type 2 template says its vocabulary on a `Taxonomy:` line.
"""

from __future__ import annotations

from parsers.fieldnames import TYPE1_LABELS
from parsers.model import TYPE1_FIELDS
from parsers.taxonomy import Taxonomy

TYPES = ("type1", "type2")


def blank_report(
    report_type: str,
    taxonomy: Taxonomy,
    period: str = "YYYY-MM",
    vocabulary: str | None = None,
) -> str:
    """A report with every field present and its value left empty.

    Raises ValueError for an unknown report type, TaxonomyError for an unknown vocabulary.
    """
    if report_type == "type1":
        if vocabulary is not None:
            raise ValueError("a type 1 report has no taxonomy; give one for type2 only")
        lines = [f"# {TYPE1_LABELS[f]}\n{f.title()}: " for f in TYPE1_FIELDS]
        head = "# Type 1: all seven fields are required; whole numbers except hours."
        return f"{head}\nReport: {report_type}\nPeriod: {period}\n" + "\n".join(lines) + "\n"
    if report_type != "type2":
        raise ValueError(f"unknown report type {report_type!r}; one of {', '.join(TYPES)}")
    named = taxonomy.vocabulary(vocabulary or taxonomy.canonical)
    lines = [f"{label}: " for _, label in named.categories()]
    head = (
        "# Type 2: count each incident once, under its primary class and type.\n"
        "# A class-only line counts incidents of that class with no type given.\n"
        "# Leave out (or delete) the lines you do not use.\n"
        f"# Classes and types of {named.full_name}."
    )
    return (
        f"{head}\nReport: {report_type}\nPeriod: {period}\nTaxonomy: {named.id}\n"
        + "\n".join(lines)
        + "\n"
    )


def template_taxonomies(taxonomy: Taxonomy) -> tuple[str, ...]:
    """The vocabularies a type 2 template can be asked for (`--taxonomy` choices)."""
    return taxonomy.ids()
