"""Publishing the site (gateway/jobs/publish.py, `report publish`, the end of `report
monthly`): a real store with several months of history, the real gateway key, and the
signatures checked by a reader's own keyring that imported the published key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_support import Cli
from site_data import LAST, MONTHS, TEAMS, store_history
from statistics_data import store, type1
from support import config_toml, with_changes

from contract.errors import ClearinghouseError
from gateway.app import App
from gateway.jobs.monthly import run_monthly
from gateway.jobs.publish import publish_site
from keys.gpg import GnuPG
from store.db import transaction
from store.statistics import record_run


def _record_runs(app: App, periods: tuple[str, ...], digest: str = "d0") -> None:
    """A monthly run for each period, on the 5th of the next month at 06:00 UTC."""
    with transaction(app.engine) as s:
        for period in periods:
            run = record_run(s, period=period, generation=0, sent=False, queued=0, digest=digest)
            year, month = int(period[:4]), int(period[5:])
            run.ran_at = datetime(year + month // 12, month % 12 + 1, 5, 6, tzinfo=UTC)


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


@pytest.fixture
def history(app: App) -> dict[str, int]:
    ids = store_history(app.engine)
    _record_runs(app, MONTHS)
    return ids


@pytest.fixture
def reader(tmp_path: Path) -> GnuPG:
    return GnuPG(tmp_path / "reader")


def test_publish_writes_the_site_and_signs_the_data(
    app: App, history: dict[str, int], reader: GnuPG
) -> None:
    lines: list[str] = []
    result = publish_site(app, progress=lines.append)
    site = app.config.publication.site_dir
    assert result.directory == site and result.periods == MONTHS
    files = _files(site)
    signed = [f"{p}/public.csv" for p in MONTHS] + [f"{p}/public.json" for p in MONTHS]
    assert {f"{name}.asc" for name in [*signed, "feed.atom"]} <= set(files)
    assert sorted(result.signed) == sorted(f"{n}.asc" for n in [*signed, "feed.atom"])
    # A reader imports the published key, checks its fingerprint, and verifies.
    imported = reader.import_keys(files["gateway-key.asc"])
    assert imported == [app.identity.fingerprint]
    for name in [*signed, "feed.atom"]:
        checked = reader.verify_detached(files[name], files[f"{name}.asc"])
        assert [s.outcome for s in checked.signatures] == ["good"], name
        assert checked.signatures[0].primary_fingerprint == app.identity.fingerprint
    assert all((site / name).stat().st_mode & 0o777 == 0o644 for name in files)
    assert lines[-1].startswith(f"site: {len(files)} file(s) written, 0 unchanged")
    document = json.loads(files[f"{LAST}/public.json"])
    assert document["generated_at"] == "2026-11-05T06:00:00Z"
    assert document["clearinghouse"] == app.config.clearinghouse.name


def test_nothing_internal_reaches_the_published_files(app: App, history: dict[str, int]) -> None:
    publish_site(app)
    for name, data in _files(app.config.publication.site_dir).items():
        text = data.decode("utf-8")
        for handle, team_name in TEAMS.items():
            assert handle not in text and team_name not in text, (name, handle)
        assert "cert@" not in text  # no contact address either


def test_a_rebuild_is_byte_identical_and_signs_nothing(app: App, history: dict[str, int]) -> None:
    publish_site(app)
    before = _files(app.config.publication.site_dir)
    again = publish_site(app)
    assert again.written == [] and again.signed == []
    assert _files(app.config.publication.site_dir) == before


def test_a_changed_month_is_signed_again_and_only_it(app: App, history: dict[str, int]) -> None:
    publish_site(app)
    site = app.config.publication.site_dir
    before = _files(site)
    # A corrected report for August, and a rerun that wrote different files.
    store(app.engine, history["grnet"], type1("2026-08", 999, 1, 1, 1, 1, 1, 1))
    with transaction(app.engine) as s:
        run = record_run(s, period="2026-08", generation=0, sent=False, queued=0, digest="d1")
        run.ran_at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    result = publish_site(app)
    changed = {name for name, data in _files(site).items() if before.get(name) != data}
    months_after = [f"2026-{m:02d}" for m in range(8, 11)]  # their 12-month windows hold August
    assert "2026-08/public.json.asc" in result.signed and "feed.atom.asc" in result.signed
    assert {"2026-07/public.csv", "2026-07/public.csv.asc"}.isdisjoint(changed)
    assert {f"{m}/public.csv.asc" for m in months_after} <= changed
    assert json.loads((site / "2026-08/public.json").read_bytes())["generated_at"] == (
        "2026-11-20T08:00:00Z"
    )
    assert json.loads((site / "2026-07/public.json").read_bytes())["generated_at"] == (
        "2026-08-05T06:00:00Z"
    )


def test_one_period_writes_only_its_files_and_the_site_wide_ones(
    app: App, history: dict[str, int]
) -> None:
    # On an empty site no month has its public.json yet: each is computed and written.
    result = publish_site(app, period="2026-05")
    assert {name.partition("/")[0] for name in result.written} == {
        *MONTHS,
        "index.html",
        "feed.atom",
        "feed.atom.asc",
        "gateway-key.asc",
    }
    # A late correction of August: October's publication writes October's files (its
    # 12-month window holds August) and reads every other month back from its own
    # public.json: August as August's run published it, so the index stays as it was.
    site = app.config.publication.site_dir
    august = (site / "2026-08/public.json").read_bytes()
    store(app.engine, history["grnet"], type1("2026-08", 999, 1, 1, 1, 1, 1, 1))
    result = publish_site(app, period="2026-10")
    assert {name.partition("/")[0] for name in result.written} == {"2026-10"}
    assert (site / "2026-08/public.json").read_bytes() == august
    # The whole site recomputed: August's files change too, and the index with them.
    result = publish_site(app)
    assert "2026-08/public.json" in result.written and "index.html" in result.written
    with pytest.raises(ClearinghouseError, match="2026-11 has no monthly run yet"):
        publish_site(app, period="2026-11")


def test_months_read_back_give_the_same_bytes_as_months_computed(
    app: App, history: dict[str, int]
) -> None:
    """The index and the feed made from the months' own public.json equal those made
    from the store; a file that does not say what the month would say now is not used."""
    publish_site(app)
    site = app.config.publication.site_dir
    before = _files(site)
    result = publish_site(app, period=LAST)
    assert result.written == [] and _files(site) == before
    (site / "2026-06/public.json").write_bytes(b"{not json")
    stale = json.loads((site / "2026-07/public.json").read_bytes())
    stale["publication_threshold"] = 2
    (site / "2026-07/public.json").write_text(json.dumps(stale))
    result = publish_site(app, period=LAST)
    assert {"2026-06/public.json", "2026-07/public.json"} <= set(result.written)
    assert _files(site) == before  # written again as they were


def test_nothing_to_publish_before_a_monthly_run(app: App) -> None:
    with pytest.raises(ClearinghouseError, match="run `clearinghouse report monthly` first"):
        publish_site(app)


def test_report_monthly_publishes_its_month(app: App, history: dict[str, int]) -> None:
    """The end of a monthly run: the site holds the month, and its public.csv is the very
    file of the reports directory."""
    lines: list[str] = []
    result = run_monthly(app, LAST, send=False, progress=lines.append)
    site = app.config.publication.site_dir
    assert (site / LAST / "public.csv").read_bytes() == result.files["public.csv"]
    assert any(line.startswith("site: ") for line in lines)
    page = (site / LAST / "index.html").read_text("utf-8")
    assert "Public statistics for October 2026" in page


def test_report_publish_on_the_command_line(
    app: App, history: dict[str, int], tmp_path: Path
) -> None:
    config = tmp_path / "clearinghouse.toml"
    config.write_text(config_toml(app.config), encoding="utf-8")
    cli = Cli(config)
    out = cli("report", "publish").output
    assert out.endswith(f"signature(s) made, in {app.config.publication.site_dir}\n")
    assert "site: wrote 2026-03/" in out
    again = cli("report", "publish", "--period", LAST).output
    assert "0 file(s) written" in again
    assert (
        "expected a month as YYYY-MM"
        in cli("report", "publish", "--period", "2026-13", code=2).output
    )
    missing = cli("report", "publish", "--period", "2025-01", code=1)
    assert "error: 2025-01 has no monthly run yet" in missing.output
    assert "Traceback" not in missing.output


@pytest.mark.parametrize(
    ("canonical", "name", "version", "full_name", "a_figure"),
    [
        (
            "ecsirt-v2",
            "eCSIRT.net incident classification",
            "2",
            "eCSIRT.net v2 (eCSIRT.net incident classification)",
            "information-gathering/scanning",
        ),
        (
            "rsit-1.3",
            "ENISA Reference Security Incident Taxonomy",
            "1.3",
            "RSIT 1.3 (ENISA Reference Security Incident Taxonomy, machine-readable version 1003)",
            "information-gathering/scanner",
        ),
    ],
)
def test_the_site_is_in_the_canonical_taxonomy_and_names_it(
    app: App,
    history: dict[str, int],
    canonical: str,
    name: str,
    version: str,
    full_name: str,
    a_figure: str,
) -> None:
    """Every month, earlier ones too, computed and labelled in `[taxonomy] canonical`."""
    configured = App(with_changes(app.config, taxonomy={"canonical": canonical}))
    publish_site(configured)
    configured.engine.dispose()
    site = app.config.publication.site_dir
    for period in MONTHS:
        document = json.loads((site / period / "public.json").read_text("utf-8"))
        assert document["taxonomy"] == {
            "id": canonical,
            "name": name,
            "version": version,
            "extended": False,
        }
        [type2] = [t for t in document["types"] if t["type"] == "type2"]
        assert a_figure in {figure["id"] for figure in type2["figures"]}
        page = (site / period / "index.html").read_text("utf-8")
        assert f"Incident classes and types: {full_name}." in page
        csv_rows = (site / period / "public.csv").read_text("utf-8").splitlines()
        assert csv_rows[-1].endswith(f",{canonical}")  # the last row is a type 2 figure
    index = (site / "index.html").read_text("utf-8")
    assert f"by the classes and types of {full_name}." in index
