"""Building blocks for hostile messages: what an attacker's tools would produce.

The gateway's own code never runs gpg outside keys/gpg.py; an attacker is not bound by
that, so these helpers drive the gpg command line directly to make packets that a
well-behaved client never would (two signers, crafted literal file names, cake
messages, bombs). Pushing them through the pipeline and reading the verdict is
tests/pipeline_support.py's job.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from support import INTAKE, TeamClient

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
