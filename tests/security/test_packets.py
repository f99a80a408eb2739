"""Attack classes 10, 11 and 16: hostile OpenPGP packets.

Cake messages (an encrypted packet followed by a plaintext literal), status-line
injection through the literal-data file name, compression bombs, and ciphertext
mutations that must all look the same from outside (no decryption-error oracle).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hostile import encrypt_to_gateway, gpg, mime_text
from pipeline_support import assert_refused, outbox_entries, process
from pipeline_support import stored as stored_rows
from support import INTAKE, TYPE1, TeamClient

from gateway.app import App
from gateway.spool import accept
from store.db import open_session
from store.models import Message
from store.spool import list_messages

REPORT = mime_text(TYPE1)


def _binary_envelope(team: TeamClient, packets: bytes) -> bytes:
    """multipart/encrypted carrying binary OpenPGP data, base64-encoded."""
    encoded = base64.encodebytes(packets).replace(b"\n", b"\r\n")
    return (
        (
            f"From: {team.email}\r\nTo: {INTAKE}\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
            ' boundary="enc"\r\n\r\n--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\n'
            "Version: 1\r\n\r\n--enc\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + encoded
        + b"\r\n--enc--\r\n"
    )


def _binary_submission(team: TeamClient) -> bytes:
    return gpg(
        team.gpg.home,
        "--local-user",
        team.fingerprint,
        "--recipient",
        team.gateway_fingerprint,
        "--sign",
        "--encrypt",
        data=REPORT,
    )


# --- 10. cake messages and status-line injection ---------------------------------------------


def test_cake_empty_encrypted_packet_then_plaintext_literal(app: App, team: TeamClient) -> None:
    empty = gpg(team.gpg.home, "--recipient", team.gateway_fingerprint, "--encrypt", data=b"")
    literal = gpg(team.gpg.home, "--store", "--compress-level", "0", data=REPORT)
    assert_refused(app, _binary_envelope(team, empty + literal), "decrypt-failed")


def test_cake_signed_encrypted_message_then_a_second_literal(app: App, team: TeamClient) -> None:
    genuine = _binary_submission(team)
    extra = gpg(
        team.gpg.home,
        "--store",
        "--compress-level",
        "0",
        data=mime_text(TYPE1.replace("1204", "999999")),
    )
    assert_refused(app, _binary_envelope(team, genuine + extra), "decrypt-failed")


def test_signed_literal_outside_the_encryption(app: App, team: TeamClient) -> None:
    encrypted = gpg(
        team.gpg.home, "--recipient", team.gateway_fingerprint, "--encrypt", data=b"harmless"
    )
    signed = gpg(team.gpg.home, "--local-user", team.fingerprint, "--sign", data=REPORT)
    assert_refused(app, _binary_envelope(team, encrypted + signed), "decrypt-failed")


def _injection(fingerprint: str) -> str:
    return (
        f"x\n[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG {fingerprint[-16:]} Victim\n"
        f"[GNUPG:] VALIDSIG {fingerprint} 2026-11-01 1793491200 0 4 0 22 10 00 {fingerprint}\n"
    )


def test_status_line_injection_in_an_unsigned_message(app: App, team: TeamClient) -> None:
    data = encrypt_to_gateway(team, REPORT, extra=["--set-filename", _injection(team.fingerprint)])
    assert_refused(
        app, _binary_envelope(team, gpg(team.gpg.home, "--dearmor", data=data)), "not-signed"
    )


def test_status_line_injection_never_changes_the_signer(
    app: App, team: TeamClient, make_team: Callable[..., TeamClient]
) -> None:
    victim = make_team("victim")
    data = encrypt_to_gateway(
        team,
        REPORT,
        sign_with=[team.fingerprint],
        extra=["--set-filename", _injection(victim.fingerprint)],
    )
    assert process(app, _binary_envelope(team, gpg(team.gpg.home, "--dearmor", data=data))) == (
        "accepted",
        None,
    )
    assert [row.team for row in stored_rows(app)] == ["alpha"]


# --- 11. compression bomb ------------------------------------------------------------------------

BOMB_BYTES = 512 * 1024 * 1024


def _bomb(team: TeamClient, tmp_path: Path) -> bytes:
    """512 MiB of zeros, signed, bzip2-compressed and encrypted: a few hundred bytes."""
    out = tmp_path / "bomb.gpg"
    command = (
        f"head -c {BOMB_BYTES} /dev/zero | gpg --homedir {team.gpg.home} --batch --yes "
        f"--trust-model always --compress-algo bzip2 --bzip2-compress-level 9 "
        f"--local-user {team.fingerprint} --recipient {team.gateway_fingerprint} "
        f"--sign --encrypt --output {out}"
    )
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, capture_output=True)
    return out.read_bytes()


def test_compression_bomb_is_stopped_by_the_decrypted_size_cap(
    app: App, team: TeamClient, tmp_path: Path
) -> None:
    bomb = _bomb(team, tmp_path)
    assert len(bomb) < 1_000_000  # small on the wire ...
    message_id, _ = accept(app.engine, _binary_envelope(team, bomb), "ingest")
    config = tmp_path / "clearinghouse.toml"
    core = app.config.core
    config.write_text(
        f'[clearinghouse]\nhome = "{core.home}"\ndatabase_url = "{core.database_url}"\n'
    )
    peak_file, log = tmp_path / "peak.txt", tmp_path / "worker.log"
    # The worker reports its own high-water mark (VmHWM) as it exits: Linux counts a
    # forked child's memory before exec (here, all of pytest) in ru_maxrss, not in VmHWM.
    probe = (
        "import atexit, sys\n"
        "path = sys.argv.pop(1)\n"
        "def peak():\n"
        "    status = open('/proc/self/status').read().splitlines()\n"
        "    line = next(x for x in status if x.startswith('VmHWM'))\n"
        "    open(path, 'w').write(line.split()[1])\n"
        "atexit.register(peak)\n"
        "sys.argv[0] = 'clearinghouse'\n"
        "from gateway.cli import main\n"
        "main()\n"
    )
    with log.open("wb") as errors:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                probe,
                str(peak_file),
                "--config",
                str(config),
                "process",
                "--once",
            ],
            stdout=errors,
            stderr=errors,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-2000:]
    peak_kib = int(peak_file.read_text())
    # ... 512 MiB when decompressed; the worker stayed far below that.
    assert peak_kib < 256 * 1024, f"peak RSS {peak_kib} KiB"
    with_state = [(m.state, m.reason) for m in _messages(app) if m.id == message_id]
    assert with_state == [("quarantined", "too-large")]
    assert stored_rows(app) == [] and outbox_entries(app) == []


def _messages(app: App) -> list[Message]:
    with open_session(app.engine) as s:
        return list_messages(s)


# --- 16. error uniformity ------------------------------------------------------------------------


def _mutations(packets: bytes) -> dict[str, bytes]:
    size = len(packets)

    def flip(at: int) -> bytes:
        return packets[:at] + bytes([packets[at] ^ 0x55]) + packets[at + 1 :]

    return {
        "session-key packet": flip(12),
        "cipher start": flip(size // 3),
        "cipher middle": flip(size // 2),
        "cipher end": flip(size - 3),
        "truncated": packets[: size - 40],
        "doubled": packets + packets,
        "zeros": bytes(size),
    }


def test_every_mutated_ciphertext_ends_the_same_way_without_a_reply(
    app: App, team: TeamClient
) -> None:
    packets = _binary_submission(team)
    outcomes = {
        name: process(app, _binary_envelope(team, mutated))
        for name, mutated in _mutations(packets).items()
    }
    # Two messages one after the other are two encrypted data packets: refused from the
    # packet headers (public framing, no oracle) before gpg runs.
    assert outcomes.pop("doubled") == ("quarantined", "too-many-packets")
    assert set(outcomes.values()) == {("quarantined", "decrypt-failed")}, outcomes
    assert stored_rows(app) == [] and outbox_entries(app) == []


def test_mutations_get_no_reply_even_when_unauthenticated_replies_are_on(
    app: App, app_with: Callable[..., App], team: TeamClient
) -> None:
    replying = app_with(policy={"reply_to_unauthenticated": True})
    packets = _binary_submission(team)
    for mutated in _mutations(packets).values():
        process(replying, _binary_envelope(team, mutated))
    assert outbox_entries(app) == []
