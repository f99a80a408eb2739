"""The public statistics site: every file of it, as bytes, from the published months.

In: each published month's `MonthlyStatistics` with the time its monthly run generated
it, and a `SiteMeta` (clearinghouse name, base URL, taxonomy, gateway key). Out: a dict
of relative path -> bytes: `index.html` (every month, newest first, and each figure's
trend over all months), and per month `YYYY-MM/index.html`, `YYYY-MM/public.csv` (the
very bytes of the reports directory's public.csv) and `YYYY-MM/public.json`, then
`feed.atom` (one entry per month) and, with a key, `gateway-key.asc`.

Everything shown passes `reports/public_figures.py` first, so no team row, name or
unpublished value can reach a page. Pages are plain HTML from jinja2 templates
(`templates/site/`, autoescaped) with inline CSS and inline SVG charts: no script and
nothing loaded from elsewhere, which a Content-Security-Policy in each page also
enforces. Pure and deterministic: no clock (the only times are the runs' own), so the
same input gives the same bytes. Signing the files is the publisher's job
(`gateway/jobs/publish.py`).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import jinja2
from markupsafe import Markup

from reports import svg_charts
from reports.csv_export import public_csv
from reports.periods import month_name
from reports.public_figures import PublicFigure, PublicMonth, PublicType, public_month
from reports.public_json import TaxonomyId, public_json
from reports.statistics import TOTAL, MonthlyStatistics

SIGNED = ("public.csv", "public.json", "feed.atom")  # the publisher signs these (.asc)


@dataclass(frozen=True)
class GatewayKey:
    fingerprint: str
    armored: str  # the public key, as `clearinghouse gateway-key` prints it

    @property
    def grouped(self) -> str:
        return " ".join(self.fingerprint[i : i + 4] for i in range(0, len(self.fingerprint), 4))


@dataclass(frozen=True)
class SiteMeta:
    clearinghouse: str
    taxonomy: TaxonomyId
    base_url: str = ""  # "https://stats.example/": absolute links in the feed
    key: GatewayKey | None = None  # None: unsigned (the pages then say nothing of it)


@dataclass(frozen=True)
class Published:
    """One published month: its statistics and when its monthly run generated them."""

    stats: MonthlyStatistics
    generated_at: datetime


@dataclass(frozen=True)
class Trend:
    id: str
    title: str
    caption: str
    figures: tuple[PublicFigure, ...]  # oldest first
    chart: svg_charts.LineChart


@dataclass(frozen=True)
class Classes:
    title: str
    figures: tuple[PublicFigure, ...]
    chart: svg_charts.BarChart


@dataclass(frozen=True)
class Part:
    """One report type on a month's page."""

    type: PublicType
    classes: Classes | None
    trends: tuple[Trend, ...]


def render_site(
    published: Sequence[Published], meta: SiteMeta, earlier: Sequence[PublicMonth] = ()
) -> dict[str, bytes]:
    """Every file of the site, by path relative to the site's directory: the site-wide
    ones, and each month of `published`'s own. Months of `earlier` (read back from their
    own public.json) are in the index, the feed and the months' links, their files not."""
    if not published:
        raise ValueError("a site needs at least one published month")
    rendered = {p.stats.period for p in published}
    months = sorted(
        [*(public_month(p.stats, as_utc(p.generated_at)) for p in published), *earlier],
        key=lambda m: m.period,
        reverse=True,
    )
    env = _environment()
    css = env.loader.get_source(env, "site.css")[0]  # type: ignore[union-attr]
    common = {
        "clearinghouse": meta.clearinghouse,
        "css": Markup(css),  # noqa: S704 - the package's own style sheet, not input
        "csp": _policy(css),
        "key": meta.key,
    }
    files: dict[str, bytes] = {}
    index = env.get_template("index.html.j2")
    files["index.html"] = _page(
        index, common, root="", months=months, latest=months[0], trends=_all_trends(months)
    )
    month_page = env.get_template("month.html.j2")
    by_period = {p.stats.period: p.stats for p in published}
    for position, month in enumerate(months):
        if month.period not in rendered:
            continue
        files[f"{month.period}/index.html"] = _page(
            month_page,
            common,
            root="../",
            month=month,
            parts=[_part(t, month.period) for t in month.types],
            previous=months[position + 1].period if position + 1 < len(months) else None,
            next=months[position - 1].period if position > 0 else None,
        )
        files[f"{month.period}/public.csv"] = public_csv(by_period[month.period])
        files[f"{month.period}/public.json"] = public_json(month, meta.clearinghouse, meta.taxonomy)
    files["feed.atom"] = _feed(env, months, meta)
    if meta.key is not None:
        files["gateway-key.asc"] = meta.key.armored.encode("ascii")
    return files


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates/site"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,  # every value from outside is text, never markup
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["width"] = svg_charts.WIDTH  # the charts' viewBox, for the macros
    env.filters["month_name"] = month_name
    env.filters["short_month"] = lambda period: month_name(period)[:3] + month_name(period)[-5:]
    env.filters["rfc3339"] = lambda moment: f"{moment:%Y-%m-%dT%H:%M:%SZ}"
    env.filters["shown_time"] = lambda moment: f"{moment:%Y-%m-%d %H:%M} UTC"
    env.filters["contributed"] = contributed
    env.filters["in_short"] = lambda t: (
        f"{t.teams} team{'s' if t.teams != 1 else ''}: "
        + ("published" if t.published else "not published")
    )
    return env


def contributed(of_type: PublicType, minimum: int) -> str:
    """ "4 teams contributed: published", as public.pdf's title page says it."""
    teams = f"{of_type.teams} team{'s' if of_type.teams != 1 else ''} contributed"
    if of_type.published:
        return f"{teams}: published"
    return f"{teams}: not published (at least {minimum} needed)"


def _policy(css: str) -> str:
    """No script, no request anywhere: only this page's own style sheet, by its hash."""
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; form-action 'none'"


def _page(template: jinja2.Template, common: dict[str, Any], **context: Any) -> bytes:
    return template.render(**common, **context).encode("utf-8")


def _part(of_type: PublicType, period: str) -> Part:
    """A month's type: its class chart (type 2, when published) and 12-month trends."""
    lines = [f for f in of_type.figures if f.depth == 0]
    classes = None
    if of_type.type == "type2" and of_type.published:
        shown = tuple(f for f in lines if f.key != TOTAL)
        classes = Classes(
            f"Average incidents per team by class, {month_name(period)}",
            shown,
            svg_charts.bars([f.label for f in shown], [_value(f) for f in shown], _texts(shown)),
        )
    trends: tuple[Trend, ...] = ()
    if any(f.published for f in of_type.trend[lines[0].key]):
        trends = tuple(
            _trend(f"{of_type.type}-{f.key}", f.label, "by month", of_type.trend[f.key])
            for f in lines
        )
    return Part(of_type, classes, trends)


@dataclass(frozen=True)
class _Group:
    type: str
    title: str
    trends: tuple[Trend, ...]


def _all_trends(months: Sequence[PublicMonth]) -> list[_Group]:
    """Per type, each figure over every published month (oldest first). Type 2 types
    are left out where no month published anything but zero for them."""
    oldest_first = list(reversed(months))
    groups = []
    for newest in months[0].types:
        trends = []
        for line in newest.figures:
            series = tuple(_in(month.of(newest.type), line) for month in oldest_first)
            if line.depth and not any(f.mean for f in series):
                continue
            trends.append(_trend(f"all-{newest.type}-{line.key}", line.label, "all months", series))
        groups.append(_Group(newest.type, newest.title, tuple(trends)))
    return groups


def _in(of_type: PublicType, line: PublicFigure) -> PublicFigure:
    """`line`'s figure in another month; a figure that month did not have (a category
    its taxonomy lacked) counts as no reports."""
    if line.key in of_type.trend:
        return of_type.figure(line.key)
    period = of_type.months[-1]
    return PublicFigure(line.key, line.label, line.depth, period, 0, None)


def _trend(key: str, label: str, span: str, figures: Sequence[PublicFigure]) -> Trend:
    chart = svg_charts.trend(
        [f.period for f in figures], [f.mean for f in figures], _texts(figures)
    )
    figure_id = "trend-" + key.replace("/", "--")
    return Trend(figure_id, label, f"{label}: average per team, {span}", tuple(figures), chart)


def _value(figure: PublicFigure) -> Fraction:
    return figure.mean if figure.mean is not None else Fraction(0)


def _texts(figures: Sequence[PublicFigure]) -> list[str]:
    return [f.shown for f in figures]


def _feed(env: jinja2.Environment, months: Sequence[PublicMonth], meta: SiteMeta) -> bytes:
    base = (
        meta.base_url if not meta.base_url or meta.base_url.endswith("/") else meta.base_url + "/"
    )
    rfc3339 = env.filters["rfc3339"]
    entries = [
        {
            "id": _entry_id(meta.clearinghouse, m.period),
            "updated": rfc3339(m.generated_at),
            "month": m,
        }
        for m in months
    ]
    return (
        env.get_template("feed.atom.j2")
        .render(
            clearinghouse=meta.clearinghouse,
            feed_id=_entry_id(meta.clearinghouse, "feed"),
            updated=max(e["updated"] for e in entries),
            base=base,
            absolute=bool(base),
            entries=entries,
        )
        .encode("utf-8")
    )


def _entry_id(clearinghouse: str, what: str) -> str:
    """A stable URN: the same for a month whatever the base URL, so moving the site does
    not make feed readers show every month again."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'clearinghouse:{clearinghouse}:{what}')}"


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: those the store wrote are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
