"""The pipeline end to end on the spool: each message state and each reason code.

Every message here is built with real GnuPG keys; processing runs the real worker over
SQLite; replies are decrypted with the team's own key. Who signed, with which key and
for whom (not-signed, unknown-key, key-revoked, bad-signature, wrong-recipient) is
tested once, with the attacks that provoke it, in tests/security/test_authentication.py.
"""

from __future__ import annotations

import email
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pipeline_support import outbox_entries as replies
from pipeline_support import process as run
from support import INTAKE, TYPE1, TYPE2, TeamClient

from gateway.app import App
from gateway.service import reprocess
from keys.compose import multipart_signed
from keys.gpg import GnuPG
from keys.wrap import encrypted_envelope
from store import spool
from store.db import open_session, transaction
from store.models import TeamKey
from store.submission_rows import list_submissions


def reply_text(team: TeamClient, raw: bytes) -> str:
    result = team.decrypt(raw)
    assert result.clean and result.decrypted
    assert len(result.signatures) == 1 and result.signatures[0].outcome == "good"
    inner = email.message_from_bytes(result.data)
    body = inner.get_payload(decode=True)
    text = body.decode() if isinstance(body, bytes) else ""
    return f"Subject: {inner['Subject']}\n\n" + text


# --- accepted -------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["combined", "signed-then-encrypted", "inline"])
def test_each_accepted_form_stores_and_sends_a_receipt(
    app: App, team: TeamClient, form: str
) -> None:
    assert run(app, team.submit(TYPE1 + "\n" + TYPE2, form=form)) == ("accepted", None)
    with open_session(app.engine) as s:
        rows = list_submissions(s)
    assert [(r.team, r.type, r.period, r.revision) for r in rows] == [
        ("alpha", "type1", "2026-10", 1),
        ("alpha", "type2", "2026-10", 1),
    ]
    assert str(rows[0].values["hours-spent"]) in ("940.5", "940.50")
    [(kind, recipient, raw)] = replies(app)
    assert (kind, recipient) == ("receipt", team.email)
    text = reply_text(team, raw)
    assert "requests:" in text and "1204" in text and "940.5" in text
    presented = {" ".join(line.split()) for line in text.splitlines()}
    # The type 2 report's counts are presented again too, each under its category.
    assert [line for line in TYPE2.splitlines()[2:] if line not in presented] == []
    assert f"submission {rows[0].id}, revision 1" in text


def test_receipt_goes_to_the_teams_newest_key_it_can_be_encrypted_to(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    # The keys are read with the team's lock (one statement on PostgreSQL): the reply is
    # encrypted to the newest usable one, whichever key signed the report.
    new_side = team.with_new_key(tmp_path / "alpha-newer", "CERT alpha (2027)")
    newer_fpr = new_side.fingerprint
    app.registry.import_keys(team.handle, new_side.gpg.export_public(newer_fpr).encode())
    with transaction(app.engine) as s:  # made a year earlier (both were made this second)
        key = s.get(TeamKey, team.fingerprint)
        assert key is not None and key.created_at is not None
        key.created_at -= timedelta(days=365)
    old_side = team

    assert run(app, old_side.submit()) == ("accepted", None)
    app.registry.revoke_key(newer_fpr, "superseded")
    assert run(app, old_side.submit(TYPE2)) == ("accepted", None)
    first, second = [raw for _, _, raw in replies(app)]
    assert "Receipt" in reply_text(new_side, first)
    assert not old_side.decrypt(first).decrypted
    assert "Receipt" in reply_text(old_side, second)  # the newer key is revoked now
    assert not new_side.decrypt(second).decrypted


def test_receipt_outer_subject_is_neutral_and_from_is_the_gateway(
    app: App, team: TeamClient
) -> None:
    run(app, team.submit())
    [(_, _, raw)] = replies(app)
    outer = email.message_from_bytes(raw)
    assert outer["Subject"] == "[...]"
    assert outer["From"] == app.config.clearinghouse.gateway_address
    assert outer["To"] == team.email
    assert b"Requests: 1204" not in raw  # the line: a random Message-ID may hold "1204"
    inner = email.message_from_bytes(team.decrypt(raw).data)
    assert inner["Subject"].startswith("Receipt: stored type1 2026-10 rev. 1")
    assert 'hp="cipher"' in inner["Content-Type"]


def test_a_correction_is_a_new_revision_that_names_what_it_supersedes(
    app: App, team: TeamClient
) -> None:
    run(app, team.submit(TYPE1))
    corrected = TYPE1.replace("Requests: 1204", "Requests: 1300")
    assert run(app, team.submit(corrected)) == ("accepted", None)
    with open_session(app.engine) as s:
        first, second = list_submissions(s)
    assert (second.revision, second.supersedes_id) == (2, first.id)
    assert second.values["requests"] == 1300 and first.values["requests"] == 1204
    text = reply_text(team, replies(app)[-1][2])
    assert f"supersedes submission {first.id}, revision 1" in text


def test_team_line_is_ignored_in_favour_of_the_signing_key(app: App, team: TeamClient) -> None:
    report = TYPE1.replace("Period:", "Team: bravo\nPeriod:")
    assert run(app, team.submit(report)) == ("accepted", None)
    with open_session(app.engine) as s:
        assert [r.team for r in list_submissions(s)] == ["alpha"]
    assert 'says "Team: bravo"' in reply_text(team, replies(app)[0][2])


# --- duplicate ------------------------------------------------------------------------


def test_the_same_message_again_is_a_duplicate_with_a_short_notice(
    app: App, team: TeamClient
) -> None:
    raw = team.submit()
    assert run(app, raw) == ("accepted", None)
    for _ in range(2):  # a replay changes nothing, however often it comes
        assert run(app, raw) == ("duplicate", None)
    with open_session(app.engine) as s:
        assert len(list_submissions(s)) == 1
    # One duplicate notice however often it is replayed (issue 18: an identical content
    # is answered once; tests/security/test_amplification.py).
    assert [(k, r) for k, r, _ in replies(app)] == [
        ("receipt", team.email),
        ("duplicate", team.email),
    ]
    assert "identical to message 1" in " ".join(reply_text(team, replies(app)[1][2]).split())


# --- rejected -------------------------------------------------------------------------


def test_an_invalid_report_is_rejected_with_each_problem_and_its_line(
    app: App, team: TeamClient
) -> None:
    bad = TYPE1.replace("Requests: 1204", "Requests: -4").replace("Hours-Spent: 940.5\n", "")
    assert run(app, team.submit(bad)) == ("rejected", "invalid-report")
    with open_session(app.engine) as s:
        assert list_submissions(s) == []
    [(kind, recipient, raw)] = replies(app)
    assert (kind, recipient) == ("rejection", team.email)
    text = reply_text(team, raw)
    assert "line 3" in text  # the negative count
    assert "hours" in text.lower()  # the missing field
    assert "Command: template type1" in text  # how to get a blank report


def test_signed_content_without_any_report_is_a_parse_error(app: App, team: TeamClient) -> None:
    assert run(app, team.submit("Hello, here are our figures.\n")) == ("rejected", "parse-error")
    assert [k for k, _, _ in replies(app)] == ["rejection"]


# --- quarantined ----------------------------------------------------------------------


def quarantined(app: App, raw: bytes, reason: str) -> None:
    assert run(app, raw) == ("quarantined", reason)
    with open_session(app.engine) as s:
        assert list_submissions(s) == []
    assert replies(app) == [], "no reply to an unauthenticated message by default"


def test_plain_mail_is_not_encrypted(app: App, team: TeamClient) -> None:
    raw = f"From: {team.email}\r\nTo: {INTAKE}\r\nSubject: x\r\n\r\n{TYPE1}".encode()
    quarantined(app, raw, "not-encrypted")


def test_key_in_the_keyring_but_bound_to_no_team_is_an_unknown_key(
    app: App, tmp_path: Path, team: TeamClient
) -> None:
    other = team.with_new_key(tmp_path / "other", "Other")
    app.gpg.import_keys(other.gpg.export_public(other.fingerprint).encode())  # not in the registry
    quarantined(app, other.submit(), "unknown-key")


def _faked(home: Path, when: datetime, *args: str) -> None:
    stamp = when.strftime("%Y%m%dT%H%M%S!")
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--faked-system-time", stamp, *args],
        check=True,
        capture_output=True,
    )


def _expired_submission(app: App, tmp_path: Path, sign_after: timedelta) -> bytes:
    """A submission signed at +sign_after by a key made 10 days ago that expired a day later."""
    home = tmp_path / "expiring"
    born = datetime.now(UTC) - timedelta(days=10)
    GnuPG(home)  # create the home with the right permissions
    _faked(
        home,
        born,
        "--passphrase",
        "",
        "--quick-gen-key",
        "Exp <cert@exp.example>",
        "future-default",
        "default",
        "0",
    )
    signer = GnuPG(
        home, extra_options=["--faked-system-time", (born + sign_after).strftime("%Y%m%dT%H%M%S!")]
    )
    fpr = _first_fingerprint(home)
    app.registry.add_team("exp", name="Exp", email="cert@exp.example")
    # Bound while it was usable; the expiry set below reaches the keyring as a refresh.
    app.registry.import_keys("exp", GnuPG(home).export_public(fpr).encode())
    # Signed in the past (faked time); encrypted today, to a gateway key made today.
    content = b"Content-Type: text/plain\r\n\r\n" + TYPE1.encode()
    entity = multipart_signed(signer, content, fpr)
    encryptor = GnuPG(home)
    encryptor.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    armored = encryptor.encrypt(entity, [app.identity.fingerprint])
    submission = encrypted_envelope([("From", "cert@exp.example"), ("To", INTAKE)], armored)
    _faked(home, born + timedelta(hours=1), "--quick-set-expire", fpr, "1d")
    app.registry.import_keys("exp", GnuPG(home).export_public(fpr).encode())
    return submission


def _first_fingerprint(home: Path) -> str:
    out = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "-k"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


def test_key_expired_at_signing_time(app: App, tmp_path: Path) -> None:
    quarantined(app, _expired_submission(app, tmp_path, timedelta(days=2)), "key-expired")


def test_key_expired_since_but_valid_when_it_signed_is_accepted(app: App, tmp_path: Path) -> None:
    assert run(app, _expired_submission(app, tmp_path, timedelta(hours=2))) == ("accepted", None)
    assert replies(app) == []  # nothing left to encrypt a receipt to; the admin is told
    with open_session(app.engine) as s:
        message = spool.get_message(s, 1)
        assert message is not None and "no receipt sent" in (message.detail or "")


@pytest.mark.parametrize("status", ["listed", "suspended"])
def test_team_whose_status_may_not_submit(
    app: App, make_team: Callable[..., TeamClient], status: str
) -> None:
    quarantined(app, make_team("lima", status=status).submit(), "team-not-allowed")


def test_signature_outside_the_freshness_window_is_stale(app: App, team: TeamClient) -> None:
    raw = team.submit()
    app.clock = lambda: datetime.now(UTC) + timedelta(days=31)
    quarantined(app, raw, "stale-signature")


def test_from_in_another_domain_is_a_sender_mismatch(app: App, team: TeamClient) -> None:
    quarantined(app, team.submit(sender="cert@elsewhere.example"), "sender-mismatch")


def test_sender_binding_off_accepts_any_from(
    app_with: Callable[..., App], team: TeamClient
) -> None:
    unbound = app_with(policy={"sender_binding": "off"})
    assert run(unbound, team.submit(sender="someone@elsewhere.example")) == ("accepted", None)


def test_encrypted_to_another_key_is_decrypt_failed(app: App, team: TeamClient) -> None:
    armored = team.gpg.sign_encrypt(TYPE1.encode(), [team.fingerprint], team.fingerprint)
    quarantined(app, encrypted_envelope([("From", team.email)], armored), "decrypt-failed")


def test_multipart_encrypted_with_three_parts_is_malformed(app: App, team: TeamClient) -> None:
    msg = email.message_from_bytes(team.submit())
    msg.attach(email.message_from_string("Content-Type: text/plain\n\nextra"))
    quarantined(app, msg.as_bytes(), "malformed-mime")


def test_unsigned_text_around_the_ciphertext_is_partially_signed(
    app: App, team: TeamClient
) -> None:
    raw = team.submit(form="inline")
    head, _, body = raw.partition(b"\r\n\r\n")
    quarantined(
        app, head + b"\r\n\r\nPlease also note: Requests: 5\r\n\r\n" + body, "partially-signed"
    )


def test_nested_signature_inside_a_signed_message_is_multiple_signatures(
    app: App, team: TeamClient
) -> None:
    inner = multipart_signed(
        team.gpg, b"Content-Type: text/plain\r\n\r\n" + TYPE1.encode(), team.fingerprint
    )
    armored = team.gpg.sign_encrypt(inner, [team.gateway_fingerprint], team.fingerprint)
    raw = encrypted_envelope([("From", team.email), ("To", INTAKE)], armored)
    quarantined(app, raw, "multiple-signatures")


def test_oversize_message_is_too_large(app_with: Callable[..., App], team: TeamClient) -> None:
    quarantined(app_with(smtp={"max_message_bytes": 500}), team.submit(), "too-large")


def test_decompressed_content_over_the_cap_is_too_large(
    app_with: Callable[..., App], team: TeamClient
) -> None:
    capped = app_with(limits={"max_decrypted_bytes": 50_000})
    quarantined(capped, team.submit(TYPE1 + "#" * 400_000 + "\n"), "too-large")


def test_reply_to_unauthenticated_notifies_only_the_registered_team(
    app: App, app_with: Callable[..., App], team: TeamClient
) -> None:
    replying = app_with(policy={"reply_to_unauthenticated": True})
    assert run(replying, team.submit(sender="mallory@evil.example")) == (
        "quarantined",
        "sender-mismatch",
    )
    [(kind, recipient, raw)] = replies(app)
    assert (kind, recipient) == ("quarantine", team.email)
    text = reply_text(team, raw)
    assert "sender-mismatch" in text and "1204" not in text


def test_reprocess_after_fixing_the_registry_accepts(app: App, team: TeamClient) -> None:
    app.registry.set_status("alpha", "suspended")
    assert run(app, team.submit()) == ("quarantined", "team-not-allowed")
    app.registry.set_status("alpha", "accredited")
    [(message_id, outcome)] = list(reprocess(app, None))
    assert (message_id, outcome.state) == (1, "accepted")
