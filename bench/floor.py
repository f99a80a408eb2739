"""The floor the gateway is compared with: its cryptography, done by bare gpg.

In: the gateway's GnuPG home and key, the messages of a round (as sent over SMTP) and
the exact plaintext of each receipt the gateway sealed for them, with its recipient.
Out: how long bare `gpg` processes take to decrypt+verify every message and
sign+encrypt every receipt, `workers` processes at a time, and the CPU they used.
On a machine with few cores gpg's best concurrency is not the core count (each gpg
process waits for gpg-agent for the secret-key operation), so the bench measures
several and compares the gateway with the best.

`sequoia_reference` is the same work in-process with Sequoia (pysequoia, the `bench`
extra): not a floor the gateway could reach with gpg, but how far gpg's own cost (two
processes a message, the agent round trips) is from what the cryptography needs.
"""

from __future__ import annotations

import email
import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FloorRun:
    workers: int
    seconds: float  # wall time of the whole round
    cpu: float  # CPU seconds of the gpg processes (not gpg-agent's)


def gpg_argv(home: Path, options: Sequence[str], *args: str) -> list[str]:
    base = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2"]
    return [*base, "--trust-model", "always", *options, *args]


def ciphertext(raw: bytes) -> bytes:
    """The OpenPGP message inside a PGP/MIME submission."""
    parts = list(email.message_from_bytes(raw).walk())
    payload = [p for p in parts if p.get_content_type() == "application/octet-stream"]
    data = payload[0].get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def floor(
    home: Path,
    signer: str,
    inputs: Sequence[bytes],
    receipts: Sequence[tuple[bytes, str]],
    workers: int,
    options: Sequence[str],
) -> FloorRun:
    """Bare gpg over every message and receipt, `workers` processes at a time, with the
    gpg `options` that change only its cost (the gateway's `keys.gpg.COST_OPTIONS`)."""

    def one(index: int) -> None:
        decrypt = gpg_argv(home, options, "--decrypt")
        subprocess.run(decrypt, input=inputs[index], capture_output=True, check=True)
        plaintext, recipient = receipts[index]
        sign = gpg_argv(
            home, options, "--armor", "--sign", "--encrypt", "--local-user", signer,
            "--recipient", recipient,
        )  # fmt: skip
        subprocess.run(sign, input=plaintext, capture_output=True, check=True)

    before, start = os.times(), time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(inputs))))
    seconds, after = time.perf_counter() - start, os.times()
    cpu = after.children_user - before.children_user
    cpu += after.children_system - before.children_system
    return FloorRun(workers, seconds, cpu)


def exported(home: Path, fingerprint: str, *, secret: bool = False) -> bytes:
    what = "--export-secret-keys" if secret else "--export"
    argv = ["gpg", "--homedir", str(home), "--batch", what, fingerprint]
    return subprocess.run(argv, capture_output=True, check=True).stdout


@dataclass(frozen=True)
class Party:
    """A key for the reference, in the GnuPG home that holds its secret part."""

    home: Path
    fingerprint: str


def sequoia_reference(
    gateway: Party, incoming: Sequence[tuple[bytes, Party]], receipts: Sequence[tuple[bytes, str]]
) -> float:
    """CPU seconds a message for the same work in-process with Sequoia, one thread:
    decrypt+verify each incoming message and sign+encrypt each receipt to its team.

    `incoming` is each message's ciphertext (as gpg made it) and its team. pysequoia
    verifies only uncompressed messages and gpg compresses, so each is decrypted and
    then encrypted and signed again by its team's key with Sequoia beforehand (not
    measured): the same plaintext, the same keys. 0.0 without pysequoia installed.
    """
    try:
        from pysequoia import Cert, Tsk, decrypt, encrypt
    except ImportError:
        return 0.0
    own = Tsk.from_bytes(exported(gateway.home, gateway.fingerprint, secret=True))
    own_cert = Cert.from_bytes(exported(gateway.home, gateway.fingerprint))
    teams = {party for _, party in incoming}
    certs = {t.fingerprint: Cert.from_bytes(exported(t.home, t.fingerprint)) for t in teams}
    signers = {
        t.fingerprint: Tsk.from_bytes(exported(t.home, t.fingerprint, secret=True)) for t in teams
    }
    decryptor, signer = own.decryptor(), own.signer()
    sealed = []
    for data, team in incoming:
        plaintext = decrypt(decryptor=decryptor, bytes=data).bytes
        again = encrypt(
            signer=signers[team.fingerprint].signer(), recipients=[own_cert], bytes=plaintext
        )
        sealed.append((again, certs[team.fingerprint]))
    count = min(len(sealed), len(receipts))
    start = time.process_time()
    for (data, cert), (receipt, recipient) in zip(sealed[:count], receipts[:count], strict=True):
        opened = decrypt(decryptor=decryptor, bytes=data, store=lambda _ids, c=cert: [c])
        if not opened.valid_sigs:
            raise RuntimeError("pysequoia: no valid signature")
        encrypt(signer=signer, recipients=[certs.get(recipient, cert)], bytes=receipt)
    return (time.process_time() - start) / max(1, count)
