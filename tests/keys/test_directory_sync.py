"""`teams sync` below the CLI: the plan from the registry and a TI directory, and its
application, on a real store and real GnuPG keyrings. Directories are built per test in
TI's format from keys made in the test, so their fingerprints are those of real keys."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from directory_support import TI_LAYOUT, spaced, ti_team
from sqlmodel import select
from support import TeamClient

from contract.errors import DirectoryError, RegistryError
from gateway.app import App
from keys import directory_sync
from keys.directory import read_directory
from keys.directory_link import set_link
from keys.directory_plan import SyncOptions
from keys.directory_sync import OfferedKeys, SyncResult
from keys.gpg import GnuPG
from store import audit
from store import registry as q
from store.db import open_session, transaction
from store.models import TiEntry

NOW = datetime(2026, 11, 24, 5, 30, tzinfo=UTC)
MakeTeam = Callable[..., TeamClient]


def sync(
    app: App,
    teams: Sequence[dict[str, Any]],
    *,
    keys: bytes | None = None,
    apply: bool = True,
    now: datetime = NOW,
    **options: bool,
) -> SyncResult:
    raw = io.BytesIO(json.dumps(list(teams)).encode())
    directory = read_directory(raw, source="teams.json", max_bytes=1 << 20)
    with OfferedKeys.open(keys) as offered:
        if apply:
            return directory_sync.apply(
                app.registry, directory, offered, SyncOptions(**options), now
            )
        plan = directory_sync.plan(app.registry, directory, offered, SyncOptions(**options))
        return SyncResult(plan, applied=False)


def link(app: App, handle: str, name: str | None) -> None:
    with transaction(app.engine) as s:
        set_link(s, "tester", app.registry.team(s, handle), name)


def statuses(app: App) -> dict[str, str]:
    with open_session(app.engine) as s:
        return {t.handle: t.status for t in q.list_teams(s)}


def entries(app: App, action: str = "teams sync") -> list[tuple[str, str]]:
    with open_session(app.engine) as s:
        return [(e.subject, e.details) for e in audit.list_entries(s) if e.action == action]


def changes(result: SyncResult) -> list[tuple[str, str, str | None, str]]:
    return [(c.kind, c.team, c.before, c.after) for c in result.plan.changes]


def reports(result: SyncResult) -> list[tuple[str, str, str | None]]:
    return [(r.kind, r.team, r.fingerprint) for r in result.plan.reports]


def key_of(tmp_path: Path, name: str, *, sign_only: bool = False) -> tuple[GnuPG, str]:
    gpg = GnuPG(tmp_path / f"own-{name}")
    return gpg, gpg.generate_key(f"CERT {name}", f"cert@{name}.example")


@pytest.fixture
def network(app: App, make_team: MakeTeam) -> dict[str, TeamClient]:
    """Five teams with keys; four linked to the directory (alpha, beta, gamma, delta)."""
    teams = {
        "alpha": make_team("alpha"),
        "beta": make_team("beta"),
        "gamma": make_team("gamma", status="certified"),
        "delta": make_team("delta", status="listed"),
        "omega": make_team("omega"),
    }
    for handle, name in [("alpha", "ALPHA-CERT"), ("beta", "BETA"), ("gamma", "GAMMA"),
                         ("delta", "DELTA")]:  # fmt: skip
        link(app, handle, name)
    return teams


def directory_of(teams: dict[str, TeamClient], **codes: str) -> list[dict[str, Any]]:
    names = {"alpha": "ALPHA-CERT", "beta": "BETA", "gamma": "GAMMA", "delta": "DELTA"}
    return [
        ti_team(names[h], code, fingerprints=[teams[h].fingerprint], email=teams[h].email)
        for h, code in codes.items()
    ]


# --- statuses --------------------------------------------------------------------------------


def test_statuses_follow_the_classification_with_one_audit_entry_each(
    app: App, network: dict[str, TeamClient]
) -> None:
    teams = directory_of(network, alpha="c", beta="l", gamma="c", delta="a")
    teams.append(ti_team("OTHER", "a"))
    before = statuses(app)

    plan = sync(app, teams, apply=False)

    assert changes(plan) == [
        ("status", "alpha", "accredited", "certified"),
        ("status", "beta", "accredited", "listed"),
        ("status", "delta", "listed", "accredited"),
    ]
    assert [c.lowers for c in plan.plan.changes] == [False, True, False]
    assert not plan.applied and statuses(app) == before and entries(app) == []

    done = sync(app, teams)

    assert done.applied and changes(done) == changes(plan)
    assert statuses(app) == before | {"alpha": "certified", "beta": "listed", "delta": "accredited"}
    logged = entries(app)
    assert [subject for subject, _ in logged] == ["alpha", "beta", "delta"]
    assert (
        "status accredited -> listed: TI classification l (Listed) since 2019-05-14"
        in (logged[1][1])
    )
    assert "(TI 'BETA')" in logged[1][1]
    assert [e.short_name for e in done.plan.unregistered] == ["OTHER"]
    assert "other" not in statuses(app)  # listed, never added


def test_what_the_directory_says_is_recorded_for_each_linked_team(
    app: App, network: dict[str, TeamClient]
) -> None:
    teams = directory_of(network, alpha="c", beta="a", gamma="c", delta="l")
    teams[0]["classification"]["since"] = "2020-06-30"
    teams[0]["pgp_keys"].append({"fingerprint": spaced("AB" * 20), "expires": None})
    teams[0]["pgp_keys"].append({"fingerprint": "ab" * 20, "expires": None})  # listed twice
    sync(app, teams)
    with open_session(app.engine) as s:
        alpha = app.registry.team(s, "alpha")
        entry = q.ti_entry(s, alpha.id or 0)
        assert entry is not None
        assert (entry.short_name, entry.classification) == ("ALPHA-CERT", "c")
        assert (entry.since, entry.seen_at) == (date(2020, 6, 30), NOW)
        recorded = {(k.fingerprint, k.expires) for k in q.ti_keys(s, alpha.id or 0)}
    assert recorded == {(network["alpha"].fingerprint, date(2031, 6, 30)), ("AB" * 20, None)}


def test_a_second_sync_with_the_same_file_changes_nothing(
    app: App, network: dict[str, TeamClient], tmp_path: Path
) -> None:
    kappa_gpg, kappa = key_of(tmp_path, "kappa")
    app.registry.add_team("kappa", name="KAPPA", email="cert@kappa.example", ti_name="KAPPA")
    teams = directory_of(network, alpha="c", beta="l", gamma="c", delta="a")
    teams.append(ti_team("KAPPA", "a", fingerprints=[kappa], email="soc@kappa.example"))
    keyring = kappa_gpg.export_public(kappa).encode()
    first = sync(app, teams, keys=keyring, update_contacts=True, suspend_missing=True)
    assert len(first.plan.changes) == 5  # three statuses, kappa's key and its contact
    after_first = (statuses(app), len(entries(app)), len(entries(app, "keys import")))

    later = NOW + timedelta(days=1)
    second = sync(app, teams, keys=keyring, update_contacts=True, suspend_missing=True, now=later)

    assert second.applied and second.plan.changes == ()
    assert (statuses(app), len(entries(app)), len(entries(app, "keys import"))) == after_first
    with open_session(app.engine) as s:
        seen = [e.seen_at for e in s.exec(select(TiEntry))]
    assert seen and all(when == later for when in seen)  # seen again, nothing else


def test_a_suspension_is_never_lifted(app: App, network: dict[str, TeamClient]) -> None:
    app.registry.set_status("beta", "suspended")
    result = sync(app, directory_of(network, alpha="a", beta="c", gamma="c", delta="l"))
    assert changes(result) == []
    [kept] = result.plan.reports
    assert (kept.kind, kept.team) == ("suspended-kept", "beta")
    assert "`teams set-status beta certified`" in kept.detail
    assert statuses(app)["beta"] == "suspended"


def test_a_linked_team_missing_from_the_directory_is_reported_or_suspended(
    app: App, network: dict[str, TeamClient]
) -> None:
    teams = directory_of(network, alpha="a", beta="a", gamma="c")  # no DELTA
    reported = sync(app, teams)
    assert changes(reported) == [] and reports(reported) == [("missing", "delta", None)]
    assert "--suspend-missing" in reported.plan.reports[0].detail
    assert statuses(app)["delta"] == "listed"

    suspended = sync(app, teams, suspend_missing=True)

    assert changes(suspended) == [("status", "delta", "listed", "suspended")]
    assert statuses(app)["delta"] == "suspended"
    [(subject, details)] = entries(app)
    assert subject == "delta" and "missing from the directory" in details
    again = sync(app, teams, suspend_missing=True)  # reported still, changed no more
    assert changes(again) == [] and reports(again) == [("missing", "delta", None)]


def test_a_directory_in_the_layout_of_tis_export(
    app: App, make_team: MakeTeam, tmp_path: Path
) -> None:
    for handle in ("t1", "t2", "t3"):
        make_team(handle)  # unlinked: the guard counts them, the sync leaves them alone
    energy = make_team("energy")
    link(app, "energy", "es-cert")
    uni_gpg, uni = key_of(tmp_path, "uni")
    app.registry.add_team("uni", name="UNI", email="cert@uni.example", ti_name="UNI NET CERT")
    text = TI_LAYOUT.replace("abcd " * 9 + "abcd", spaced(uni).lower())
    text = text.replace(
        "1111 2222 3333 4444 5555  6666 7777 8888 9999 AAAA", spaced(energy.fingerprint)
    )
    teams = json.loads(text)

    result = sync(app, teams, keys=uni_gpg.export_public(uni).encode(), update_contacts=True)

    assert changes(result) == [
        ("status", "energy", "accredited", "certified"),
        ("contact", "energy", "cert@energy.example", "cert@grid.example"),
        ("key", "uni", None, uni),
    ]
    assert reports(result) == [("key-missing", "uni", "BCDE" * 10)]
    assert result.plan.reports[0].expires == date(2029, 3, 12)
    assert [e.short_name for e in result.plan.unregistered] == ["CONS CSIRT"]
    with open_session(app.engine) as s:
        bound = q.team_for_fingerprint(s, uni)
        assert bound is not None and bound.handle == "uni"


# --- the quarter-of-teams guard --------------------------------------------------------------


def test_lowering_more_than_a_quarter_of_the_teams_is_refused_without_force(
    app: App, network: dict[str, TeamClient]
) -> None:
    teams = directory_of(network, alpha="l", beta="l", gamma="c", delta="l")  # 2 of 5 lowered
    before = statuses(app)

    refused = sync(app, teams)

    assert not refused.applied and refused.plan.guard.refuses
    assert (refused.plan.guard.lowered, refused.plan.guard.teams) == (2, 5)
    assert statuses(app) == before and entries(app) == []
    with open_session(app.engine) as s:
        assert s.exec(select(TiEntry)).first() is None  # not even the record of the directory

    forced = sync(app, teams, force=True)

    assert forced.applied and statuses(app)["alpha"] == statuses(app)["beta"] == "listed"


def test_a_quarter_exactly_is_not_more_than_a_quarter(
    app: App, make_team: MakeTeam, network: dict[str, TeamClient]
) -> None:
    make_team("zeta")
    make_team("eta")
    make_team("theta")  # 8 teams now: 2 lowered is a quarter
    teams = directory_of(network, alpha="l", beta="l", gamma="c", delta="l")
    result = sync(app, teams)
    assert result.applied and not result.plan.guard.trips
    suspended = sync(app, directory_of(network, gamma="a"), suspend_missing=True)
    assert suspended.plan.guard.lowered == 4 and not suspended.applied  # missing ones count


# --- keys ------------------------------------------------------------------------------------


def test_a_key_is_bound_only_on_a_full_primary_fingerprint_listed_for_the_team(
    app: App, network: dict[str, TeamClient], tmp_path: Path
) -> None:
    kappa_gpg, kappa = key_of(tmp_path, "kappa")
    stranger_gpg, stranger = key_of(tmp_path, "stranger")
    lambda_gpg, lambda_fpr = key_of(tmp_path, "lambda")
    lambda_sub = lambda_gpg.details(lambda_fpr).subkeys[0].fingerprint  # type: ignore[union-attr]
    app.registry.add_team("kappa", name="KAPPA", email="cert@kappa.example", ti_name="KAPPA")
    app.registry.add_team("lambda", name="LAMBDA", email="cert@lambda.example", ti_name="LAMBDA")
    teams = directory_of(network, alpha="a", beta="a", gamma="c", delta="l") + [
        ti_team("KAPPA", "a", fingerprints=[kappa.lower()], email="cert@kappa.example"),
        ti_team("LAMBDA", "a", fingerprints=[lambda_sub], email="cert@lambda.example"),
        ti_team("NOT-HERE", "c", fingerprints=[stranger]),
    ]
    keyring = b"".join(
        gpg.export_public(fpr).encode()
        for gpg, fpr in [(kappa_gpg, kappa), (stranger_gpg, stranger), (lambda_gpg, lambda_fpr)]
    )

    result = sync(app, teams, keys=keyring)

    assert changes(result) == [("key", "kappa", None, kappa)]
    assert ("key-missing", "lambda", lambda_sub) in reports(result)  # a subkey: no match
    assert (result.plan.keys_offered, result.plan.keys_matched) == (3, 1)
    with open_session(app.engine) as s:
        bound = q.team_for_fingerprint(s, kappa)
        assert bound is not None and bound.handle == "kappa"
        assert q.get_key(s, lambda_fpr) is None and q.get_key(s, stranger) is None
    [(subject, details)] = [e for e in entries(app) if e[0] == kappa]
    assert details.startswith("bound to kappa: CERT kappa <cert@kappa.example>")
    assert app.gpg.details(kappa) is not None
    assert app.gpg.details(stranger) is None and app.gpg.details(lambda_fpr) is None


def test_a_key_the_rules_of_keys_import_refuse_is_reported_not_bound(
    app: App, network: dict[str, TeamClient], tmp_path: Path
) -> None:
    chair_gpg, chair = key_of(tmp_path, "chair")
    app.registry.add_coordinator("chair@network.example", chair_gpg.export_public(chair).encode())
    app.registry.add_team("kappa", name="KAPPA", email="cert@kappa.example", ti_name="KAPPA")
    teams = directory_of(network, alpha="a", beta="a", gamma="c", delta="l")
    teams.append(ti_team("KAPPA", "a", fingerprints=[chair], email="cert@kappa.example"))

    plan = sync(app, teams, keys=chair_gpg.export_public(chair).encode(), apply=False)
    assert changes(plan) == [("key", "kappa", None, chair)]  # the rules are applied on --apply
    result = sync(app, teams, keys=chair_gpg.export_public(chair).encode())

    assert changes(result) == [] and reports(result) == [("key-refused", "kappa", chair)]
    assert "coordinator chair@network.example's" in result.plan.reports[0].detail
    with open_session(app.engine) as s:
        assert q.team_for_fingerprint(s, chair) is None
    assert entries(app) == []


def test_keys_listed_bound_elsewhere_missing_or_no_longer_listed_are_reported(
    app: App, network: dict[str, TeamClient]
) -> None:
    other = "CD" * 20
    teams = directory_of(network, alpha="a", beta="a", gamma="c", delta="l")
    teams[0]["pgp_keys"] = [{"fingerprint": spaced(other), "expires": "2027-01-31"}]
    teams[1]["pgp_keys"].append({"fingerprint": network["gamma"].fingerprint, "expires": None})
    result = sync(app, teams)
    assert changes(result) == []
    assert sorted(reports(result)) == [
        ("key-elsewhere", "beta", network["gamma"].fingerprint),
        ("key-missing", "alpha", other),
        ("key-not-listed", "alpha", network["alpha"].fingerprint),
    ]
    missing = next(r for r in result.plan.reports if r.kind == "key-missing")
    assert missing.expires == date(2027, 1, 31) and "expires 2027-01-31" in missing.detail

    teams[0]["pgp_keys"] = []  # the next file drops it: its last known expiry is kept
    teams[2]["pgp_keys"] = []
    later = sync(app, teams)
    gone = next(r for r in later.plan.reports if r.team == "gamma")
    assert (gone.kind, gone.expires) == ("key-not-listed", date(2031, 6, 30))
    assert "listed before, expires 2031-06-30" in gone.detail


def test_a_keyring_with_a_secret_key_or_no_key_is_refused(
    app: App, network: dict[str, TeamClient], tmp_path: Path
) -> None:
    import subprocess

    gpg, fpr = key_of(tmp_path, "careless")
    secret = subprocess.run(
        ["gpg", "--homedir", str(gpg.home), "--batch", "--armor", "--export-secret-keys", fpr],
        check=True,
        capture_output=True,
    ).stdout
    teams = directory_of(network, alpha="c", beta="l", gamma="c", delta="l")
    with pytest.raises(DirectoryError, match="holds a SECRET key"):
        sync(app, teams, keys=secret)
    with pytest.raises(DirectoryError, match="holds no OpenPGP public key"):
        sync(app, teams, keys=b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbroken\n")
    assert entries(app) == [] and statuses(app)["alpha"] == "accredited"


# --- contacts --------------------------------------------------------------------------------


def test_contact_addresses_change_only_with_update_contacts(
    app: App, network: dict[str, TeamClient]
) -> None:
    teams = directory_of(network, alpha="a", beta="a", gamma="c", delta="l")
    teams[0]["emails"] = [{"address": "SOC@Alpha.example", "usage": ["contact"]}]
    teams[1]["emails"] = [{"address": "not an address", "usage": ["contact"]}]
    teams[2]["emails"] = [{"address": "noc@gamma.example", "usage": ["emergency"]}]

    told = sync(app, teams)
    assert changes(told) == []
    assert reports(told) == [("contact-differs", "alpha", None), ("contact-unusable", "beta", None)]

    changed = sync(app, teams, update_contacts=True)

    assert changes(changed) == [("contact", "alpha", "cert@alpha.example", "soc@alpha.example")]
    with open_session(app.engine) as s:
        assert app.registry.team(s, "alpha").email == "soc@alpha.example"
        assert app.registry.team(s, "gamma").email == "cert@gamma.example"  # no contact usage
    [(subject, details)] = entries(app)
    assert subject == "alpha" and "contact cert@alpha.example -> soc@alpha.example" in details


# --- links -----------------------------------------------------------------------------------


def test_a_directory_entry_links_to_one_team_only(app: App, network: dict[str, TeamClient]) -> None:
    with pytest.raises(RegistryError, match="team 'alpha' is linked to TI entry 'ALPHA-CERT'"):
        link(app, "omega", "alpha-cert")
    with pytest.raises(RegistryError, match="linked to TI entry 'BETA' already"):
        app.registry.add_team("b2", name="B2", email="cert@b2.example", ti_name=" beta ")
    sync(app, directory_of(network, alpha="a", beta="a", gamma="c", delta="l"))

    link(app, "alpha", "ALPHA  CERT")  # another entry: what the old one said is dropped
    with open_session(app.engine) as s:
        alpha = app.registry.team(s, "alpha")
        assert alpha.ti_name == "ALPHA CERT" and q.ti_entry(s, alpha.id or 0) is None
    link(app, "alpha", None)
    link(app, "omega", "ALPHA-CERT")  # free now
    assert [d for _, d in entries(app, "teams set-ti")][-3:] == [
        "'ALPHA-CERT' -> 'ALPHA CERT'",
        "'ALPHA CERT' -> None",
        "None -> 'ALPHA-CERT'",
    ]
