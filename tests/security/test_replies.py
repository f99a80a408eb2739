"""Attack classes 7, 8, 14 and 15: what goes out, to whom, and what comes in with a message.

The gateway answers mail, so it must never become an oracle: it decrypts exactly one
layer, answers only with values it stored for the authenticated team, only to that
team's registered address, and never learns keys from messages.
"""

from __future__ import annotations

import base64
import email
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import encrypt_to_gateway, envelope, mime_text, multipart
from pipeline_support import outbox_entries, process, stored
from support import TYPE1, TeamClient

from contract.errors import RegistryError
from gateway.app import App
from keys.gpg import GnuPG

SECRET = "Requests: 987654"  # the victim's figure that must never reach the attacker
VICTIM_REPORT = TYPE1.replace("Requests: 1204", SECRET)


@pytest.fixture
def victim(make_team: Callable[..., TeamClient]) -> TeamClient:
    return make_team("victim")


@pytest.fixture
def attacker(make_team: Callable[..., TeamClient]) -> TeamClient:
    return make_team("mallory")


@pytest.fixture
def decrypt_calls(app: App, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Observe every decryption the gateway performs (the real one still runs)."""
    calls: list[bytes] = []
    real = app.gpg.decrypt

    def observed(data: bytes, passphrase: str | None = None, **limits: int | None) -> object:
        calls.append(data)
        return real(data, passphrase, **limits)

    monkeypatch.setattr(app.gpg, "decrypt", observed)
    return calls


def _victim_ciphertext(victim: TeamClient) -> bytes:
    """The armored OpenPGP block of the victim's genuine submission."""
    msg = email.message_from_bytes(victim.submit(VICTIM_REPORT))
    [data] = [
        p.get_payload(decode=True)
        for p in msg.walk()
        if p.get_content_type() == "application/octet-stream"
    ]
    assert isinstance(data, bytes)
    return data


def _wrapped(attacker: TeamClient, inner: bytes) -> bytes:
    return envelope(attacker, encrypt_to_gateway(attacker, inner, sign_with=[attacker.fingerprint]))


def _assert_no_oracle(app: App, attacker: TeamClient, decrypt_calls: list[bytes]) -> None:
    assert len(decrypt_calls) == 1, "nested ciphertext was decrypted"
    assert all(row.team == "mallory" for row in stored(app))
    for kind, recipient, raw in outbox_entries(app):
        assert recipient == attacker.email
        assert SECRET.encode() not in attacker.decrypt(raw).data, f"{kind} leaked the victim"


# --- 7. reply oracle -------------------------------------------------------------------------


def test_victim_ciphertext_pasted_inline(
    app: App, victim: TeamClient, attacker: TeamClient, decrypt_calls: list[bytes]
) -> None:
    body = TYPE1 + "\n" + _victim_ciphertext(victim).decode()
    # The armored lines are not report lines: the report is invalid, and the error
    # reply names lines of ciphertext at most, never what they decrypt to.
    assert process(app, _wrapped(attacker, mime_text(body))) == ("rejected", "invalid-report")
    _assert_no_oracle(app, attacker, decrypt_calls)


def test_victim_ciphertext_as_the_only_content(
    app: App, victim: TeamClient, attacker: TeamClient, decrypt_calls: list[bytes]
) -> None:
    raw = _wrapped(attacker, mime_text(_victim_ciphertext(victim).decode()))
    assert process(app, raw) == ("rejected", "parse-error")
    _assert_no_oracle(app, attacker, decrypt_calls)


@pytest.mark.parametrize(
    "ctype", ["application/octet-stream", "application/pgp-encrypted", "text/plain"]
)
def test_victim_ciphertext_as_an_attachment(
    app: App, victim: TeamClient, attacker: TeamClient, decrypt_calls: list[bytes], ctype: str
) -> None:
    attachment = (
        f"Content-Type: {ctype}\r\nContent-Disposition: attachment; filename=x.asc\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(_victim_ciphertext(victim))
    inner = multipart("mixed", [mime_text(TYPE1), attachment])
    assert process(app, _wrapped(attacker, inner)) == ("accepted", None)
    _assert_no_oracle(app, attacker, decrypt_calls)


def test_victim_message_forwarded_as_message_rfc822(
    app: App, victim: TeamClient, attacker: TeamClient, decrypt_calls: list[bytes]
) -> None:
    forwarded = b"Content-Type: message/rfc822\r\n\r\n" + victim.submit(VICTIM_REPORT)
    inner = multipart("mixed", [mime_text(TYPE1), forwarded])
    assert process(app, _wrapped(attacker, inner)) == ("accepted", None)
    _assert_no_oracle(app, attacker, decrypt_calls)


def test_victim_multipart_encrypted_nested_as_the_whole_content(
    app: App, victim: TeamClient, attacker: TeamClient, decrypt_calls: list[bytes]
) -> None:
    nested = email.message_from_bytes(victim.submit(VICTIM_REPORT))
    for header in ("From", "To", "Subject", "Message-ID", "Date", "MIME-Version"):
        del nested[header]
    state, _ = process(app, _wrapped(attacker, nested.as_bytes()))
    assert state in {"rejected", "quarantined"}
    _assert_no_oracle(app, attacker, decrypt_calls)


# --- 8. From, Reply-To and Sender tricks ---------------------------------------------------


def _with_headers(raw: bytes, *lines: str) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    kept = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"from:")]
    return b"\r\n".join([*(line.encode() for line in lines), *kept]) + sep + body


def test_reply_to_and_sender_never_redirect_the_receipt(app: App, attacker: TeamClient) -> None:
    raw = _with_headers(
        attacker.submit(),
        f"From: {attacker.email}",
        "Reply-To: thief@evil.example",
        "Sender: thief@evil.example",
        "Return-Path: <thief@evil.example>",
    )
    assert process(app, raw) == ("accepted", None)
    assert [r for _, r, _ in outbox_entries(app)] == [attacker.email]


@pytest.mark.parametrize(
    "from_lines",
    [
        ("From: cert@mallory.example", "From: cert@victim.example"),
        ('From: "cert@mallory.example" <thief@evil.example>',),
        ("From: ",),
        (),
        ("From: cert@mallory.example, thief@evil.example",),
        ("From: cert@sub.mallory.example",),
    ],
    ids=[
        "two-from",
        "display-name-holds-an-address",
        "empty",
        "absent",
        "two-addresses",
        "subdomain",
    ],
)
def test_from_tricks_are_a_sender_mismatch(
    app: App, attacker: TeamClient, from_lines: tuple[str, ...]
) -> None:
    raw = _with_headers(attacker.submit(), *from_lines)
    assert process(app, raw) == ("quarantined", "sender-mismatch")
    assert stored(app) == [] and outbox_entries(app) == []


def test_display_name_naming_someone_else_does_not_matter(app: App, attacker: TeamClient) -> None:
    raw = _with_headers(attacker.submit(), f'From: "cert@victim.example" <{attacker.email}>')
    assert process(app, raw) == ("accepted", None)


def test_address_binding_refuses_another_mailbox_of_the_same_domain(
    app_with: Callable[..., App], attacker: TeamClient
) -> None:
    by_address = app_with(policy={"sender_binding": "address"})
    raw = _with_headers(attacker.submit(), "From: intern@mallory.example")
    assert process(by_address, raw) == ("quarantined", "sender-mismatch")
    assert process(by_address, attacker.submit()) == ("accepted", None)


def test_with_binding_off_the_data_still_belongs_to_the_signer(
    app: App, app_with: Callable[..., App], victim: TeamClient, attacker: TeamClient
) -> None:
    unbound = app_with(policy={"sender_binding": "off"})
    raw = _with_headers(attacker.submit(), f"From: {victim.email}", f"Reply-To: {victim.email}")
    assert process(unbound, raw) == ("accepted", None)
    assert [row.team for row in stored(app)] == ["mallory"]
    assert [r for _, r, _ in outbox_entries(app)] == [attacker.email]


# --- 14. injection into outgoing headers -------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example\r\nBcc: thief@evil.example",
        "a@b.example\nBcc: x@evil.example",
        "ä@b.example",
        "a@b.example, thief@evil.example",
    ],
)
def test_registry_refuses_addresses_that_could_inject_headers(app: App, address: str) -> None:
    with pytest.raises(RegistryError):
        app.registry.add_team("inject", name="Inject", email=address)


def test_hostile_names_and_filenames_stay_in_the_body(
    app: App, make_team: Callable[..., TeamClient]
) -> None:
    team = make_team("unicode")
    csv = "report,period,key,value\ntype1,2026-10,requests,7\n"
    attachment = (
        'Content-Type: text/csv; name="=?utf-8?q?r=0D=0ABcc=3A_thief=40evil=2Eexample?="\r\n'
        'Content-Disposition: attachment; filename="a\r\n b\xc3\xa9.csv"\r\n\r\n'
    ).encode() + csv.encode()
    report = TYPE1.replace("Period:", "Team: x\r\nBcc: thief@evil.example\nPeriod:")
    inner = multipart("mixed", [mime_text(report), attachment])
    process(app, envelope(team, encrypt_to_gateway(team, inner, sign_with=[team.fingerprint])))
    for _, recipient, raw in outbox_entries(app):
        assert recipient == team.email
        outer = email.message_from_bytes(raw)
        inner_msg = email.message_from_bytes(team.decrypt(raw).data)
        for msg in (outer, inner_msg):
            assert msg.get_all("Bcc") is None and msg.get_all("Cc") is None
            assert msg.get_all("To") == [team.email]


# --- 15. key injection ----------------------------------------------------------------------------


def test_keys_in_attachments_autocrypt_and_body_are_never_imported(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    planted = GnuPG(tmp_path / "planted")
    planted_fpr = planted.generate_key("Planted", "cert@alpha.example")
    block = planted.export_public(planted_fpr)
    keydata = "".join(block.split("\n\n", 1)[1].split("-----END")[0].split("\n")[:-2])
    key_part = (
        b"Content-Type: application/pgp-keys\r\n"
        b"Content-Disposition: attachment; filename=key.asc\r\n\r\n" + block.encode()
    )
    inner = multipart("mixed", [mime_text(TYPE1), mime_text(block), key_part])
    raw = envelope(team, encrypt_to_gateway(team, inner, sign_with=[team.fingerprint]))
    head, sep, body = raw.partition(b"\r\n\r\n")
    raw = head + f"\r\nAutocrypt: addr={team.email}; keydata={keydata}".encode() + sep + body
    assert process(app, raw) == ("accepted", None)
    assert app.gpg.details(planted_fpr) is None
    # ... and a message signed by the planted key still is not accepted.
    client = TeamClient("alpha", team.email, planted, planted_fpr, app.identity.fingerprint)
    planted.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    assert process(app, client.submit()) == ("quarantined", "unknown-key")


def test_a_key_attached_to_a_message_from_a_stranger_is_not_imported(
    app: App, tmp_path: Path, team: TeamClient
) -> None:
    impostor = team.with_new_key(tmp_path / "stranger", "Stranger")
    stranger, fpr = impostor.gpg, impostor.fingerprint
    key_part = b"Content-Type: application/pgp-keys\r\n\r\n" + stranger.export_public(fpr).encode()
    inner = multipart("mixed", [mime_text(TYPE1), key_part])
    raw = envelope(team, stranger.sign_encrypt(inner, [app.identity.fingerprint], fpr))
    assert process(app, raw) == ("quarantined", "unknown-key")
    assert app.gpg.details(fpr) is None
