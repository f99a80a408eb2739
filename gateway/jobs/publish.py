"""Publishing the public statistics site: load → compute → render → write → sign.

In: the `App` (store, configuration, gateway key) and optionally one period. Out: the
site in `[publication] site_dir`, rendered by `reports/site.py` from every month that
has a recorded monthly run (`report monthly` publishes its month), and a
`PublishResult` saying what changed.

- Each month's figures are computed from the store as `report monthly` computes them,
  with the current `[reports] min_teams_for_public`; `generated_at` is the time of the
  month's first run whose files were the same as its newest run's (the digest in
  `monthlyrun`), so a rerun with unchanged data leaves the site byte-identical.
- Files are written with `atomic_write` (temp file, fsync, rename) only when their
  content changed, then made world-readable: the site is public by design.
- `public.csv`, `public.json` and `feed.atom` each get a detached ASCII-armoured
  signature by the gateway key beside them (`.asc`). An existing signature is kept while
  it is still a good signature of the file's current bytes by the gateway key; only a
  changed file (or a new gateway key) is signed again, since signing the same bytes
  twice gives different signatures.
- With `period` (`report monthly` publishes its month so), that month's files and the
  site-wide ones (index, feed, key) are written; the month must have been run already.
  Every other month is read back from its own `public.json` when that file says the same
  run, threshold and taxonomy (`reports.public_json.read_public_json`), so the run costs
  the same after ten years as after one; a month without such a file is computed from the
  store and its files written as well. Without `period` every month is computed from the
  store again (late revisions of earlier months included) and every file rewritten where
  it changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.jobs.files import atomic_write, pseudonym_secret
from reports.periods import shift
from reports.public_figures import PublicMonth
from reports.public_json import Expected, TaxonomyId, read_public_json
from reports.site import SIGNED, GatewayKey, Published, SiteMeta, as_utc, render_site
from reports.statistics import compute
from store.db import open_session
from store.models import MonthlyRun
from store.statistics import list_runs, newest_reports

Progress = Callable[[str], None]
PUBLIC_MODE = 0o644  # a web server's user must read the site


@dataclass
class PublishResult:
    directory: Path
    periods: tuple[str, ...]  # every published month, oldest first
    written: list[str] = field(default_factory=list)  # paths under `directory`
    unchanged: int = 0
    signed: list[str] = field(default_factory=list)  # signatures made anew


def publish_site(
    app: App, *, period: str | None = None, progress: Progress = lambda _line: None
) -> PublishResult:
    """Render the site from every run month and write and sign what changed."""
    times = run_times(app)
    if not times:
        raise ClearinghouseError(
            "no month has been published yet: run `clearinghouse report monthly` first"
        )
    if period is not None and period not in times:
        raise ClearinghouseError(
            f"{period} has no monthly run yet: run `clearinghouse report monthly "
            f"--period {period}` first (add --no-send to write files only)"
        )
    meta, directory = _meta(app), app.config.publication.site_dir
    earlier = _read_back(app, times, meta, but=period) if period is not None else {}
    computed = {p: times[p] for p in times if p not in earlier}
    site = render_site(_published(app, computed), meta, list(earlier.values()))
    result = PublishResult(directory, tuple(sorted(times)))
    for path in site:
        _write(directory / path, site[path], result, path)
    for path in (p for p in site if p.rpartition("/")[2] in SIGNED):
        _sign(app, directory / path, site[path], result, f"{path}.asc")
    _report(result, progress)
    return result


def run_times(app: App) -> dict[str, datetime]:
    """Period -> when its current figures were generated: the first run whose digest is
    the newest run's (reruns with the same data keep the date)."""
    with open_session(app.engine) as s:
        runs = list_runs(s)
    by_period: dict[str, list[MonthlyRun]] = {}
    for run in runs:  # in run order
        by_period.setdefault(run.period, []).append(run)
    return {
        month: next(r.ran_at for r in month_runs if r.digest == month_runs[-1].digest)
        for month, month_runs in by_period.items()
    }


def _read_back(
    app: App, times: dict[str, datetime], meta: SiteMeta, but: str
) -> dict[str, PublicMonth]:
    """Every run month but `but` whose public.json in the site says what it would say now."""
    minimum = app.config.reports.min_teams_for_public
    label = app.taxonomy.canonical_vocabulary.full_name
    found = {}
    for month in (p for p in sorted(times) if p != but):
        path = app.config.publication.site_dir / month / "public.json"
        if not path.is_file():
            continue
        now = Expected(meta.clearinghouse, meta.taxonomy, minimum, as_utc(times[month]), label)
        read = read_public_json(path.read_bytes(), month, now)
        if read is not None:
            found[month] = read
    return found


def _published(app: App, times: dict[str, datetime]) -> list[Published]:
    """Each month's statistics, from one read of the store over all their windows."""
    periods = sorted(times)
    with open_session(app.engine) as s:
        reports = newest_reports(s, shift(periods[0], -11), periods[-1])
    secret = pseudonym_secret(app.config.clearinghouse.home)  # unused by public figures
    minimum = app.config.reports.min_teams_for_public
    return [
        Published(compute(reports, p, app.taxonomy, minimum=minimum, secret=secret), times[p])
        for p in periods
    ]


def _meta(app: App) -> SiteMeta:
    fingerprint = app.identity.fingerprint
    canonical = app.taxonomy.canonical_vocabulary  # what every month is computed in
    return SiteMeta(
        clearinghouse=app.config.clearinghouse.name,
        taxonomy=TaxonomyId(
            canonical.id,
            canonical.title,
            canonical.version,
            extended=app.config.taxonomy.extra_file is not None,
        ),
        base_url=app.config.publication.base_url,
        key=GatewayKey(fingerprint, app.gpg.export_public(fingerprint)),
    )


def _write(path: Path, data: bytes, result: PublishResult, name: str) -> None:
    if path.is_file() and path.read_bytes() == data:
        result.unchanged += 1
        return
    atomic_write(path, data, mode=PUBLIC_MODE)
    result.written.append(name)


def _sign(app: App, path: Path, data: bytes, result: PublishResult, name: str) -> None:
    signature = path.with_name(path.name + ".asc")
    if signature.is_file() and _still_good(app, data, signature.read_bytes()):
        result.unchanged += 1
        return
    identity = app.identity
    armored = app.gpg.sign_detached(data, identity.fingerprint, identity.passphrase)
    _write(signature, armored.encode("ascii"), result, name)
    result.signed.append(name)


def _still_good(app: App, data: bytes, signature: bytes) -> bool:
    """A good signature of `data` by the gateway key (its primary key or a subkey)."""
    checked = app.gpg.verify_detached(data, signature)
    fingerprint = app.identity.fingerprint
    return checked.clean and any(
        fact.outcome == "good"
        and fingerprint in (fact.primary_fingerprint, fact.signing_fingerprint)
        for fact in checked.signatures
    )


def _report(result: PublishResult, progress: Progress) -> None:
    months = sorted({name.partition("/")[0] for name in result.written if "/" in name})
    for month in months:
        progress(f"site: wrote {month}/")
    progress(
        f"site: {len(result.written)} file(s) written, {result.unchanged} unchanged, "
        f"{len(result.signed)} signature(s) made, in {result.directory}"
    )
