"""Building blocks for hostile messages: what an attacker's tools would produce.

The gateway's own code never runs gpg outside keys/gpg.py; an attacker is not bound by
that, so these helpers drive the gpg command line directly to make packets that a
well-behaved client never would (two signers, crafted literal file names, cake
messages, bombs). Pushing them through the pipeline and reading the verdict is
tests/pipeline_support.py's job.
"""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from support import INTAKE, TeamClient

from gateway.app import App
from keys.packets import split_first
from keys.wrap import encrypted_envelope


def gpg(home: Path, *args: str, data: bytes = b"") -> bytes:
    """Run gpg in `home` and return stdout; fails the test on a non-zero exit."""
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always", *args],
        input=data,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return result.stdout


def envelope(team: TeamClient, armored: bytes | str, *, sender: str | None = None) -> bytes:
    """Wrap OpenPGP data in an RFC 3156 multipart/encrypted message from `team`."""
    text = armored.decode("ascii") if isinstance(armored, bytes) else armored
    return encrypted_envelope([("From", sender or team.email), ("To", INTAKE)], text)


def mime_text(body: str, *, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"{k}: {v}" for k, v in headers] + ["Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def multipart(subtype: str, parts: Sequence[bytes], boundary: str = "b0undary") -> bytes:
    out = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def encrypt_to_gateway(
    team: TeamClient, plaintext: bytes, *, sign_with: Sequence[str] = (), extra: Sequence[str] = ()
) -> bytes:
    """Encrypt (and optionally sign, with any number of keys) with the team's keyring."""
    args = ["--armor", "--recipient", team.gateway_fingerprint, *extra, "--encrypt"]
    for fpr in sign_with:
        args = ["--local-user", fpr, *args]
    if sign_with:
        args.append("--sign")
    return gpg(team.gpg.home, *args, data=plaintext)


# --- floods of key packets (issue 18, item 2) ----------------------------------------------


def encryption_key_id(app: App) -> bytes:
    """The 8-byte key ID of the gateway's encryption subkey, as PKESK packets name it."""
    details = app.gpg.details(app.identity.fingerprint)
    assert details is not None
    [subkey] = [s for s in details.subkeys if "e" in s.capabilities]
    return bytes.fromhex(subkey.fingerprint[-16:])


def random_pkesk(key_id: bytes) -> bytes:
    """A version 3 PKESK for an ECDH (cv25519) key: a random ephemeral point and a random
    wrapped session key. gpg-agent does one X25519 operation for it, then fails."""
    body = (
        bytes([3])
        + key_id
        + bytes([18])  # ECDH
        + (263).to_bytes(2, "big")
        + b"\x40"
        + os.urandom(32)  # the ephemeral point, an MPI of 263 bits
        + bytes([48])
        + os.urandom(48)  # the wrapped session key
    )
    return bytes([0xC1, len(body)]) + body  # new format, tag 1, one-octet length


def pkesk_flood(key_id: bytes, size: int, tail: bytes) -> bytes:
    """`tail` (a real message's packets) with random PKESK packets for `key_id` around
    its own key packet, about `size` bytes in all, so that gpg tries half of them before
    the one that works whatever its order: gpg 2.2 tries each packet as it meets it,
    gpg 2.4 gathers them and tries the last one first."""
    count = max(2, (size - len(tail)) // len(random_pkesk(key_id)))
    first, rest = split_first(tail)
    return (
        random_pkesks(key_id, count // 2) + first + random_pkesks(key_id, count - count // 2) + rest
    )


def random_pkesks(key_id: bytes, count: int) -> bytes:
    return b"".join(random_pkesk(key_id) for _ in range(count))


def nested_layer(team: TeamClient, inner: bytes) -> bytes:
    """`inner` OpenPGP packets encrypted to the gateway as they are (no literal packet
    around them): gpg decrypts this layer and then processes `inner` itself."""
    args = ["--recipient", team.gateway_fingerprint, "--compress-algo", "none"]
    return gpg(team.gpg.home, "--no-literal", *args, "--encrypt", data=inner)


def binary_envelope(sender: str, packets: bytes) -> bytes:
    """multipart/encrypted from `sender` carrying binary OpenPGP data, base64-encoded."""
    encoded = base64.encodebytes(packets).replace(b"\n", b"\r\n")
    head = (
        f"From: {sender}\r\nTo: {INTAKE}\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        ' boundary="enc"\r\n\r\n--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\n'
        "Version: 1\r\n\r\n--enc\r\nContent-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode() + encoded + b"\r\n--enc--\r\n"


def binary_report(team: TeamClient, report: bytes) -> bytes:
    """`report` signed by the team and encrypted to the gateway, as binary packets."""
    args = ["--local-user", team.fingerprint, "--recipient", team.gateway_fingerprint]
    return gpg(team.gpg.home, *args, "--sign", "--encrypt", data=report)


# --- a running gateway: the SMTP door and the worker's threads, as `serve` runs them -------
