"""The site renderer (reports/site.py), pure: every file from the figures, public.json
against its schema, the feed, byte-identical rebuilds, and nothing internal anywhere:
no team name or handle, no individual value, no figure below the threshold.
(The pages in a real browser, and their HTML validity: tests/gateway/test_site_browser.py.)
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest
from site_data import LAST, MONTHS, SECRET_VALUES, TEAMS, THIN_TYPE1, THIN_TYPE2, stored_reports

from parsers.taxonomy import load_taxonomy
from reports import svg_charts
from reports.csv_export import public_csv
from reports.public_figures import exact_string
from reports.public_json import TaxonomyId
from reports.site import GatewayKey, Published, SiteMeta, render_site
from reports.statistics import MonthlyStatistics, compute

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "public.schema.json").read_text("utf-8")
)
TAXONOMY = TaxonomyId("ecsirt-v2", "eCSIRT.net incident taxonomy", "2")
KEY = GatewayKey("0123456789ABCDEF0123456789ABCDEF01234567", "-----BEGIN PGP PUBLIC KEY BLOCK-----")
ATOM = "{http://www.w3.org/2005/Atom}"


def _generated(period: str) -> datetime:
    year, month = int(period[:4]), int(period[5:])
    return datetime(year + month // 12, month % 12 + 1, 5, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stats() -> dict[str, MonthlyStatistics]:
    reports = stored_reports()
    taxonomy = load_taxonomy()
    return {p: compute(reports, p, taxonomy, minimum=3, secret=b"s" * 32) for p in MONTHS}


def _published(stats: dict[str, MonthlyStatistics]) -> list[Published]:
    return [Published(s, _generated(p)) for p, s in stats.items()]


@pytest.fixture(scope="module")
def site(stats: dict[str, MonthlyStatistics]) -> dict[str, bytes]:
    return render_site(_published(stats), SiteMeta("Clearinghouse Nord & Süd", TAXONOMY, key=KEY))


def test_every_file_of_the_site(site: dict[str, bytes]) -> None:
    per_month = {
        f"{p}/{name}" for p in MONTHS for name in ("index.html", "public.csv", "public.json")
    }
    assert set(site) == {"index.html", "feed.atom", "gateway-key.asc"} | per_month


def test_the_same_figures_give_the_same_bytes(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    again = render_site(
        list(reversed(_published(stats))), SiteMeta("Clearinghouse Nord & Süd", TAXONOMY, key=KEY)
    )
    assert again == site


def test_public_csv_is_the_reports_directorys_csv(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    for period, month in stats.items():
        assert site[f"{period}/public.csv"] == public_csv(month)


def test_public_json_follows_its_schema_and_the_computed_figures(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for period, month in stats.items():
        document = json.loads(site[f"{period}/public.json"])
        validator.validate(document)
        assert document["period"] == period
        assert document["generated_at"] == f"{_generated(period):%Y-%m-%dT%H:%M:%SZ}"
        assert document["taxonomy"] == {
            "id": "ecsirt-v2",
            "name": "eCSIRT.net incident taxonomy",
            "version": "2",
            "extended": False,
        }
        for of_type in document["types"]:
            computed = month.of(of_type["type"])
            assert [f["id"] for f in of_type["figures"]] == [line.key for line in computed.lines]
            for figure in of_type["figures"]:
                expected = computed.current(figure["id"])
                assert figure["teams"] == expected.teams
                assert figure["published"] == expected.published
                if expected.published:
                    assert expected.mean is not None
                    assert Fraction(figure["average"]["exact"]) == expected.mean
                    assert figure["average"]["rounded"] == f"{expected.rounded():.2f}"
                else:
                    assert figure["average"] is None


def test_a_thin_month_publishes_nothing_of_that_type(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    document = json.loads(site[f"{THIN_TYPE1}/public.json"])
    type1 = document["types"][0]
    assert type1["teams"] == 2 and not type1["published"]
    assert all(f["average"] is None and not f["published"] for f in type1["figures"])
    page = site[f"{THIN_TYPE1}/index.html"].decode()
    assert "Not published for June 2026: 2 teams contributed, at least 3 are needed." in page
    for line in stats[THIN_TYPE1].type1.lines:  # June: no average; May's beside it
        assert _row(page, line.label).startswith(
            f'<tr><th scope="row">{line.label}</th><td class="num unpublished">not published</td>'
        )
    april = json.loads(site[f"{THIN_TYPE2}/public.json"])["types"][1]
    assert april["teams"] == 1 and all(f["average"] is None for f in april["figures"])


def test_nothing_internal_is_in_any_file(site: dict[str, bytes]) -> None:
    for path, data in site.items():
        text = data.decode("utf-8")
        for handle, name in TEAMS.items():
            assert handle not in text, (path, handle)
            for shown in (name, name.replace("&", "&amp;").replace("<", "&lt;")):
                assert shown not in text, (path, name)
        for value in SECRET_VALUES:
            assert not re.search(rf"\b{value:,}\b|\b{value}\b", text), (path, value)
        assert "Team A" not in text  # no pseudonym either


def test_pages_hold_no_script_and_name_nothing_outside(site: dict[str, bytes]) -> None:
    for path, data in site.items():
        if not path.endswith(".html"):
            continue
        page = data.decode()
        assert "<script" not in page and not re.search(r"<[^>]*\son[a-z]+=", page), path
        assert not re.search(r"\b(src|href)=\"(https?:)?//", page), path
        assert "http://" not in page and "https://" not in page, path
        assert "default-src 'none'" in page.replace("&#39;", "'")


def test_shown_figures_equal_the_computed_ones(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    page = site[f"{LAST}/index.html"].decode()
    type1 = stats[LAST].type1
    for line in type1.lines:
        current, previous = type1.trend[line.key][-1], type1.trend[line.key][-2]
        cells = re.findall(r"<data value=\"([0-9.]+)\">([0-9.,]+)</data>", _row(page, line.label))
        assert cells[0] == (f"{current.rounded():.2f}", f"{current.rounded():,.2f}")
        assert cells[1] == (f"{previous.rounded():.2f}", f"{previous.rounded():,.2f}")


def _row(page: str, label: str) -> str:
    match = re.search(rf"<tr[^>]*><th scope=\"row\">{re.escape(label)}</th>.*?</tr>", page)
    assert match, label
    return match.group(0)


def test_the_feed_has_one_entry_per_month_newest_first(
    stats: dict[str, MonthlyStatistics], site: dict[str, bytes]
) -> None:
    feed = ET.fromstring(site["feed.atom"])  # noqa: S314 - our own output
    entries = feed.findall(f"{ATOM}entry")
    hrefs = [
        link.get("href") for e in entries for link in e.findall(f"{ATOM}link[@rel='alternate']")
    ]
    assert hrefs == [f"{p}/index.html" for p in sorted(MONTHS, reverse=True)]
    assert feed.findtext(f"{ATOM}updated") == f"{_generated(LAST):%Y-%m-%dT%H:%M:%SZ}"
    absolute = render_site(
        _published(stats),
        SiteMeta("Clearinghouse Nord & Süd", TAXONOMY, base_url="https://stats.example/ch"),
    )
    moved = ET.fromstring(absolute["feed.atom"])  # noqa: S314 - our own output
    links = [link.get("href") for link in moved.iter(f"{ATOM}link")]
    assert links[:2] == [
        "https://stats.example/ch/index.html",
        "https://stats.example/ch/feed.atom",
    ]
    assert all(str(link).startswith("https://stats.example/ch/") for link in links)
    # Entry ids do not depend on where the site is: moving it repeats no entry.
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert ids == [e.findtext(f"{ATOM}id") for e in moved.findall(f"{ATOM}entry")]
    assert len(set(ids)) == len(ids)


def test_without_a_key_the_pages_promise_no_signature(stats: dict[str, MonthlyStatistics]) -> None:
    unsigned = render_site(_published(stats), SiteMeta("Clearinghouse", TAXONOMY))
    assert "gateway-key.asc" not in unsigned
    assert ".asc" not in unsigned["index.html"].decode()
    assert ".asc" not in unsigned[f"{LAST}/index.html"].decode()


def test_the_verification_text_names_the_key(site: dict[str, bytes]) -> None:
    page = site["index.html"].decode()
    assert "0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567" in page
    assert "gpg --verify public.csv.asc public.csv" in page


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(375), "375"),
        (Fraction(10253, 40), "256.325"),
        (Fraction(1, 3), "1/3"),
        (Fraction(2255, 6), "2255/6"),
        (Fraction(1, 1024), "0.0009765625"),
        (Fraction(0), "0"),
        (Fraction(-5, 2), "-2.5"),
    ],
)
def test_exact_averages_are_written_exactly(value: Fraction, text: str) -> None:
    assert exact_string(value) == text
    assert Fraction(text) == value


def test_a_trend_line_breaks_where_a_month_is_not_published() -> None:
    months = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    values = [Fraction(10), Fraction(20), None, Fraction(35, 2), Fraction(40)]
    chart = svg_charts.trend(months, values, ["10.00", "20.00", "not published", "17.50", "40.00"])
    assert [len(segment) for segment in chart.segments] == [2, 2]
    assert chart.segments[1][0].title == "April 2026: 17.50"
    assert [t.label for t in chart.ticks] == ["0", "10", "20", "30", "40"]
    # The highest value sits on the top tick, zero on the axis.
    top = chart.segments[1][1]
    assert top.y == chart.ticks[-1].y and chart.ticks[0].y == chart.bottom
    assert svg_charts.trend(months, [None] * 5, ["not published"] * 5).empty
