"""Type 2 reports in RSIT 1.3 and eCSIRT.net v2: every RSIT class and type by slug and by
display name, with and without a `Taxonomy:` line, in text, CSV and JSON; what each line
was sent as and what it counts as in either canonical vocabulary."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from parsers.jsonfile import parse_json
from parsers.model import Classification, CountLine, ParseOutcome, Type2Report
from parsers.table import parse_csv
from parsers.taxonomy import ECSIRT, RSIT, Taxonomy, load_taxonomy
from parsers.template import blank_report
from parsers.text import parse_text

TAXONOMY = load_taxonomy()
IN_RSIT = load_taxonomy(canonical=RSIT)
TODAY = date(2026, 11, 15)
Line = tuple[str, str]  # (key as written, count as written)


def as_text(lines: list[Line], taxonomy: str | None) -> str:
    head = "Report: type2\nPeriod: 2026-10\n" + (f"Taxonomy: {taxonomy}\n" if taxonomy else "")
    return head + "".join(f"{key}: {count}\n" for key, count in lines)


def as_csv(lines: list[Line], taxonomy: str | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["report", "period", "key", "value"])
    if taxonomy:
        writer.writerow(["type2", "2026-10", "Taxonomy", taxonomy])
    writer.writerows(["type2", "2026-10", key, count] for key, count in lines)
    return out.getvalue()


def as_json(lines: list[Line], taxonomy: str | None) -> str:
    report: dict[str, object] = {"report": "type2", "period": "2026-10"}
    if taxonomy:
        report["taxonomy"] = taxonomy
    report["counts"] = {key: int(count) for key, count in lines}
    return json.dumps(report)


Parser = Callable[[str, str, date, Taxonomy], ParseOutcome]
FORMATS: dict[str, tuple[Callable[[list[Line], str | None], str], Parser]] = {
    "text": (as_text, parse_text),
    "csv": (as_csv, parse_csv),
    "json": (as_json, parse_json),
}


def parse(
    fmt: str, lines: list[Line], taxonomy: str | None = None, with_: Taxonomy = TAXONOMY
) -> ParseOutcome:
    write, read = FORMATS[fmt]
    return read(write(lines, taxonomy), f"report.{fmt}", TODAY, with_)


def report_of(outcome: ParseOutcome) -> Type2Report:
    assert outcome.ok, outcome.errors
    (report,) = outcome.reports
    assert isinstance(report, Type2Report)
    return report


def messages(outcome: ParseOutcome) -> list[tuple[int | None, str]]:
    assert not outcome.reports
    return [(e.line, e.message) for e in outcome.errors]


def rsit_categories() -> list[tuple[Classification, str, str]]:
    """Every RSIT class (class-only line) and type: (classification, by slug, by name)."""
    found = []
    for cls in TAXONOMY.vocabulary(RSIT).classes:
        found.append((Classification(RSIT, cls.slug), cls.slug, cls.name))
        for typ in cls.types:
            found.append(
                (
                    Classification(RSIT, cls.slug, typ.slug),
                    f"{cls.slug}/{typ.slug}",
                    f"{cls.name} / {typ.name}",
                )
            )
    return found


RSIT_CATEGORIES = rsit_categories()


def test_there_are_11_classes_and_39_types_to_test() -> None:
    assert len(RSIT_CATEGORIES) == 11 + 39


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("spelling", ["slug", "name", "upper-case name"])
def test_every_rsit_class_and_type_with_a_taxonomy_line(fmt: str, spelling: str) -> None:
    lines = [(_spelled(c, spelling), str(n)) for n, c in enumerate(RSIT_CATEGORIES, start=1)]
    for taxonomy in (TAXONOMY, IN_RSIT):
        report = report_of(parse(fmt, lines, "rsit-1.3", taxonomy))
        assert [line.sent for line in report.lines] == [c for c, _, _ in RSIT_CATEGORIES]
        assert [line.count for line in report.lines] == list(range(1, 51))
        assert report.taxonomy == taxonomy.canonical
        for line in report.lines:
            assert line.counts_as == taxonomy.counts_as(line.sent).counts_as
    in_rsit = report_of(parse(fmt, lines, "rsit-1.3", IN_RSIT))
    assert all(line.counts_as == line.sent and line.exact for line in in_rsit.lines)
    assert sum(in_rsit.counts.values()) == sum(range(1, 51))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("spelling", ["slug", "name", "upper-case name"])
def test_every_rsit_class_and_type_without_a_taxonomy_line(fmt: str, spelling: str) -> None:
    """eCSIRT.net v2 first: an RSIT name eCSIRT also has is read as eCSIRT's, which is
    then exactly the same class or type; either way it counts as the RSIT one in RSIT."""
    lines = [(_spelled(c, spelling), "2") for c in RSIT_CATEGORIES]
    report = report_of(parse(fmt, lines, None, IN_RSIT))
    for line, (expected, _, _) in zip(report.lines, RSIT_CATEGORIES, strict=True):
        if line.sent.vocabulary == ECSIRT:
            assert expected in TAXONOMY.equivalents(line.sent), (line.sent, expected)
        else:
            assert line.sent == expected
        assert line.counts_as == expected
    by_slug = report_of(parse(fmt, [(key, "2") for _, key, _ in RSIT_CATEGORIES], None))
    read_as_rsit = sum(line.sent.vocabulary == RSIT for line in by_slug.lines)
    assert read_as_rsit >= 26  # every RSIT type eCSIRT lacks, and RSIT's own classes


def _spelled(category: tuple[Classification, str, str], spelling: str) -> str:
    _, slug, name = category
    return {"slug": slug, "name": name, "upper-case name": name.upper()}[spelling]


@pytest.mark.parametrize("fmt", FORMATS)
def test_intelmq_slugs_and_the_issues_example(fmt: str) -> None:
    lines = [
        ("fraud/phishing", "7"),
        ("malicious-code/infected-system", "4"),
        ("Malicious Code / C2 Server", "2"),
        ("vulnerable/weak-crypto", "1"),
        ("test/test", "1"),
        ("Vulnerable / Potentially Unwanted Accessible", "3"),
        ("Availability / Outage", "5"),
        ("fraud/unauthorized-use-of-resources", "1"),  # eCSIRT's name too: read as eCSIRT's
    ]
    report = report_of(parse(fmt, lines))
    assert [line.sent.key for line in report.lines] == [
        "fraud/phishing",
        "malicious-code/infected-system",
        "malicious-code/c2-server",
        "vulnerable/weak-crypto",
        "test/test",
        "vulnerable/potentially-unwanted-accessible",
        "availability/outage",
        "fraud/unauthorised-use",
    ]
    assert [line.sent.vocabulary for line in report.lines] == [RSIT] * 7 + [ECSIRT]
    assert report.counts == {
        ("fraud", "masquerade"): 7,
        ("malicious-code", None): 6,  # two RSIT types, one eCSIRT class: added together
        ("other", None): 5,
        ("availability", None): 5,
        ("fraud", "unauthorised-use"): 1,
    }
    assert [line.exact for line in report.lines] == [False] * 7 + [True]
    in_rsit = report_of(parse(fmt, lines, with_=IN_RSIT))
    assert in_rsit.counts[("fraud", "phishing")] == 7
    assert in_rsit.counts[("test", "test")] == 1


def test_an_ecsirt_report_counted_in_rsit() -> None:
    lines = [("Malicious Code / Virus", "12"), ("Intrusion Attempts / Login attempts", "43"),
             ("Other", "1")]  # fmt: skip
    report = report_of(parse("text", lines, "ecsirt-v2", IN_RSIT))
    assert report.taxonomy == RSIT
    assert report.lines == (
        CountLine(Classification(ECSIRT, "malicious-code", "virus"),
                  Classification(RSIT, "malicious-code"), 12, exact=False),
        CountLine(Classification(ECSIRT, "intrusion-attempts", "login-attempts"),
                  Classification(RSIT, "intrusion-attempts", "brute-force"), 43, exact=True),
        CountLine(Classification(ECSIRT, "other"), Classification(RSIT, "other"), 1, exact=True),
    )  # fmt: skip
    assert report.counts == {
        ("malicious-code", None): 12,
        ("intrusion-attempts", "brute-force"): 43,
        ("other", None): 1,
    }


def test_a_taxonomy_line_restricts_names_to_its_vocabulary() -> None:
    text = "Report: type2\nPeriod: 2026-10\nTaxonomy: ecsirt-v2\nvulnerable/weak-crypto: 1\n"
    ((line, message),) = messages(parse_text(text, "body", TODAY, TAXONOMY))
    assert line == 4
    assert message.startswith('unknown incident class "vulnerable"; the classes are Abusive')
    assert message.endswith("Other (eCSIRT.net v2)")
    text = "Report: type2\nPeriod: 2026-10\nTaxonomy: rsit-1.3\nMalicious Code / Virus: 1\n"
    ((line, message),) = messages(parse_text(text, "body", TODAY, TAXONOMY))
    assert (line, message) == (4, 'unknown incident type "Virus" in class "Malicious Code"')


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unknown_taxonomy_is_an_error_with_its_line(fmt: str) -> None:
    found = messages(parse(fmt, [("Other", "1")], "rsit-1.2"))
    line = {"text": 3, "csv": 2, "json": None}[fmt]
    assert found == [(line, 'unknown taxonomy "rsit-1.2"; use ecsirt-v2 or rsit-1.3')]


def test_taxonomy_is_for_type2_only_and_given_once() -> None:
    text = "Report: type1\nPeriod: 2026-10\nTaxonomy: rsit-1.3\nRequests: 1\n"
    found = messages(parse_text(text, "body", TODAY, TAXONOMY))
    assert (3, '"Taxonomy" is for type 2 reports only; remove it here') in found
    text = "Report: type2\nPeriod: 2026-10\nTaxonomy: rsit-1.3\nTaxonomy: rsit-1.3\nOther: 1\n"
    found = messages(parse_text(text, "body", TODAY, TAXONOMY))
    assert found == [(4, '"taxonomy" is given twice (first on line 3)')]


def test_the_same_category_in_both_vocabularies_is_counted_twice() -> None:
    lines = [("Intrusion Attempts / Login attempts", "1"), ("intrusion-attempts/brute-force", "2")]
    found = messages(parse("text", lines))
    assert found == [(4, '"intrusion-attempts/brute-force" is counted twice (first on line 3)')]
    # different categories that count as the same canonical one are added
    lines = [("Malicious Code / Virus", "1"), ("malicious-code/infected-system", "2"),
             ("Malicious Code", "3")]  # fmt: skip
    report = report_of(parse("text", lines))
    assert report.counts == {("malicious-code", "virus"): 1, ("malicious-code", None): 5}


@pytest.mark.parametrize("vocabulary", [ECSIRT, RSIT])
def test_a_filled_template_in_either_vocabulary_parses(vocabulary: str) -> None:
    for taxonomy in (TAXONOMY, IN_RSIT):
        blank = blank_report("type2", taxonomy, "2026-10", vocabulary)
        assert f"\nTaxonomy: {vocabulary}\n" in blank
        filled = blank.replace(": \n", ": 1\n")
        report = report_of(parse_text(filled, "body", TODAY, taxonomy))
        sent = [line.sent for line in report.lines]
        expected = [Classification(vocabulary, *key)
                    for key, _ in taxonomy.vocabulary(vocabulary).categories()]  # fmt: skip
        assert sent == expected
        assert sum(report.counts.values()) == len(expected)


def test_the_template_defaults_to_the_canonical_vocabulary() -> None:
    assert "\nTaxonomy: ecsirt-v2\nAbusive Content: \n" in blank_report("type2", TAXONOMY)
    in_rsit = blank_report("type2", IN_RSIT)
    assert "\nTaxonomy: rsit-1.3\nAbusive Content: \n" in in_rsit
    assert "\nOther / Uncategorised: \n" in in_rsit
    assert "machine-readable version 1003" in in_rsit


def test_an_extension_is_read_in_every_format(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(
        '[[rsit_class]]\nslug = "malicious-code"\nname = "Malicious Code"\n'
        '  [[rsit_class.type]]\n  slug = "ransomware"\n  name = "Ransomware"\n',
        encoding="utf-8",
    )
    taxonomy = load_taxonomy(extra)
    for fmt in FORMATS:
        report = report_of(parse(fmt, [("malicious-code/ransomware", "3")], "rsit-1.3", taxonomy))
        (line,) = report.lines
        assert line.sent == Classification(RSIT, "malicious-code", "ransomware")
        assert report.counts == {("malicious-code", None): 3}
