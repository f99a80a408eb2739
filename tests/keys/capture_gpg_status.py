"""Capture GnuPG's real status lines for every outcome the signature policy tells apart.

In: the gpg on PATH (run once per GnuPG version: Debian 12's 2.2, Debian 13's 2.4). Out:
DIR/gnupg-<version>/<scenario>.status, the `[GNUPG:]` lines of one gateway decryption or
verification, after a header of `# name: value` lines (the scenario, the gpg version, the
operation, when, gpg's exit status, the fingerprints involved and, for an expiring key,
its expiry). tests/keys/test_gpg_versions.py feeds them to `parse_status`.

Every key is made fresh in a temporary directory and thrown away; the files hold no secret
(fingerprints, user IDs of throwaway keys, times). The gateway side runs through
`keys.gpg.GnuPG`, so with the gateway's own options. Usage, from the repository root:

    .venv/bin/python tests/keys/capture_gpg_status.py tests/data/gpg-status
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from keys.gpg import GnuPG
from keys.gpg_status import STATUS_PREFIX

REPORT = b"Content-Type: text/plain\r\n\r\nReport: phishing 12\r\n"


def cli(home: Path, *args: str, data: bytes = b"", when: datetime | None = None) -> bytes:
    """The gpg command line on `home` (for what `GnuPG` has no call for), at `when`."""
    faked = ["--faked-system-time", when.strftime("%Y%m%dT%H%M%S!")] if when else []
    batch = ["--batch", "--trust-model", "always", "--pinentry-mode", "loopback"]
    argv = ["gpg", "--homedir", str(home), *batch, "--passphrase", "", *faked, *args]
    return subprocess.run(argv, input=data, check=True, capture_output=True).stdout


@dataclass
class Party:
    """One GnuPG home with one key."""

    gpg: GnuPG
    fingerprint: str

    @classmethod
    def make(cls, root: Path, name: str) -> Party:
        gpg = GnuPG(root / name)
        return cls(gpg, gpg.generate_key(f"CERT {name}", f"cert@{name}.example"))

    def knows(self, *others: Party) -> None:
        for other in others:
            self.gpg.import_keys(other.gpg.export_public(other.fingerprint).encode())


@dataclass
class Capture:
    """One scenario's gpg run on the gateway side, and what the header records."""

    operation: str  # decrypt | verify-detached
    data: bytes
    signature: bytes = b""
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    root: Path
    gateway: Party
    alice: Party  # registered: the gateway knows her key
    carol: Party  # registered too
    stranger: Party  # the gateway has never seen this key
    second: str = ""  # a second key in Alice's home, registered
    unregistered: str = ""  # a third key in Alice's home, the gateway has never seen

    def to_gateway(self, sender: Party, *signers: str, data: bytes = REPORT) -> bytes:
        """A combined signed-and-encrypted message to the gateway, made by `sender`'s home."""
        args = [arg for fpr in signers for arg in ("--local-user", fpr)]
        recipient = ["--recipient", self.gateway.fingerprint, "--armor", "--encrypt"]
        return cli(sender.gpg.home, *args, *recipient, *(["--sign"] if signers else []), data=data)

    def around(self, sender: Party, packets: bytes, *extra: str) -> bytes:
        """`packets` (not a literal holding them) encrypted to the gateway."""
        args = ["--no-literal", "--compress-algo", "none", *extra, "--armor", "--encrypt"]
        return cli(sender.gpg.home, "--recipient", self.gateway.fingerprint, *args, data=packets)


def _good(w: World) -> Capture:
    return Capture("decrypt", w.to_gateway(w.alice, w.alice.fingerprint), facts=_signer(w.alice))


def _good_detached(w: World) -> Capture:
    signature = w.alice.gpg.sign_detached(REPORT, w.alice.fingerprint).encode()
    return Capture("verify-detached", REPORT, signature, _signer(w.alice))


def _bad_detached(w: World) -> Capture:
    signature = w.alice.gpg.sign_detached(REPORT, w.alice.fingerprint).encode()
    return Capture("verify-detached", REPORT.replace(b"12", b"13"), signature, _signer(w.alice))


def _bad(w: World) -> Capture:
    """Signed, the signed text changed, then encrypted: the signature no longer matches."""
    signed = cli(w.alice.gpg.home, "--compress-algo", "none", "--sign", data=REPORT)
    tampered = signed.replace(b"phishing 12", b"phishing 13")
    return Capture("decrypt", w.around(w.alice, tampered), facts=_signer(w.alice))


def _unknown_key(w: World) -> Capture:
    data = w.to_gateway(w.stranger, w.stranger.fingerprint)
    return Capture("decrypt", data, facts=_signer(w.stranger))


def _unknown_key_detached(w: World) -> Capture:
    signature = w.stranger.gpg.sign_detached(REPORT, w.stranger.fingerprint).encode()
    return Capture("verify-detached", REPORT, signature, _signer(w.stranger))


def _expiring(w: World, name: str, signed_after: timedelta) -> Capture:
    """Signed at +signed_after by a key made ten days ago that expired a day after.

    The expiry is set after signing, with an earlier date: gpg signs with no expired key.
    """
    home, born = w.root / name, datetime.now(UTC) - timedelta(days=10)
    GnuPG(home)  # the home, with the permissions gpg wants
    cli(home, "--quick-gen-key", f"CERT {name} <cert@{name}.example>", "ed25519", "sign", "0",
        when=born)  # fmt: skip
    fpr = _only_fingerprint(home)
    signed = cli(home, "--local-user", fpr, "--sign", data=REPORT, when=born + signed_after)
    cli(home, "--quick-set-expire", fpr, "1d", when=born + timedelta(hours=1))
    expiring = Party(GnuPG(home), fpr)
    expiring.knows(w.gateway)
    w.gateway.knows(expiring)
    details = w.gateway.gpg.details(fpr)
    assert details is not None and details.expires is not None
    facts = _signer(expiring) | {"expires": str(int(details.expires.timestamp()))}
    return Capture("decrypt", w.around(expiring, signed), facts=facts)


def _expired_key(w: World) -> Capture:
    """Signed after its key had expired."""
    return _expiring(w, "expired", timedelta(days=2))


def _expired_since(w: World) -> Capture:
    """Signed while its key was valid; the key has expired since."""
    return _expiring(w, "expiring", timedelta(hours=2))


def _revoked_key(w: World) -> Capture:
    """Signed by a registered key that the gateway then learns is revoked (by its owner)."""
    revoker = Party.make(w.root, "revoked")
    revoker.knows(w.gateway)
    w.gateway.knows(revoker)
    data = w.to_gateway(revoker, revoker.fingerprint)
    certificate = revoker.gpg.home / "openpgp-revocs.d" / f"{revoker.fingerprint}.rev"
    w.gateway.gpg.import_keys(certificate.read_bytes().replace(b":-----BEGIN", b"-----BEGIN"))
    return Capture("decrypt", data, facts=_signer(revoker))


def _no_mdc(w: World) -> Capture:
    """Encrypted without integrity protection (a bare SED packet, as RFC 2440 allowed)."""
    signed = cli(w.alice.gpg.home, "--sign", data=REPORT)
    data = w.around(w.alice, signed, "--rfc2440", "--cipher-algo", "AES256")
    return Capture("decrypt", data, facts=_signer(w.alice))


def _several_signatures(w: World) -> Capture:
    both = w.to_gateway(w.alice, w.alice.fingerprint, w.second)
    return Capture("decrypt", both, facts=_signer(w.alice) | {"second": w.second})


def _several_signatures_one_unknown(w: World) -> Capture:
    data = w.to_gateway(w.alice, w.alice.fingerprint, w.unregistered)
    return Capture("decrypt", data, facts=_signer(w.alice) | {"second": w.unregistered})


def _nested_encryption(w: World) -> Capture:
    inner = cli(w.alice.gpg.home, "--recipient", w.gateway.fingerprint, "--encrypt", data=REPORT)
    return Capture("decrypt", w.around(w.alice, inner))


def _no_secret_key(w: World) -> Capture:
    """Encrypted to a key the gateway does not hold (Carol's)."""
    w.alice.knows(w.carol)
    data = cli(w.alice.gpg.home, "--recipient", w.carol.fingerprint, "--armor", "--encrypt",
               "--sign", "--local-user", w.alice.fingerprint, data=REPORT)  # fmt: skip
    return Capture("decrypt", data, facts=_signer(w.alice))


SCENARIOS: dict[str, Callable[[World], Capture]] = {
    "good": _good,
    "good-detached": _good_detached,
    "bad": _bad,
    "bad-detached": _bad_detached,
    "unknown-key": _unknown_key,
    "unknown-key-detached": _unknown_key_detached,
    "expired-key": _expired_key,
    "expired-since": _expired_since,
    "revoked-key": _revoked_key,
    "no-mdc": _no_mdc,
    "several-signatures": _several_signatures,
    "several-signatures-one-unknown": _several_signatures_one_unknown,
    "nested-encryption": _nested_encryption,
    "no-secret-key": _no_secret_key,
}


def _signer(party: Party, which: str = "signer") -> dict[str, str]:
    return {which: party.fingerprint}


def _only_fingerprint(home: Path) -> str:
    listing = cli(home, "--with-colons", "--list-keys").decode()
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


def _gpg_version() -> str:
    first = subprocess.run(["gpg", "--version"], check=True, capture_output=True).stdout
    found = re.search(rb"\d+\.\d+\.\d+", first)
    if found is None:
        raise SystemExit(f"cannot tell gpg's version from: {first[:80]!r}")
    return found.group().decode()


def _run(w: World, capture: Capture) -> tuple[int, str]:
    """The gateway's gpg run for `capture`: its exit status and status lines."""
    gpg = w.gateway.gpg
    if capture.operation == "decrypt":
        ran = gpg._run(["--decrypt"], capture.data)
    else:
        with tempfile.TemporaryDirectory(dir=gpg.home, prefix="sig-") as tmp:
            sig = Path(tmp) / "signature.asc"
            sig.write_bytes(capture.signature)
            ran = gpg._run(["--verify", str(sig), "-"], capture.data)
    lines = [line for line in ran.stderr.splitlines() if line.startswith(STATUS_PREFIX)]
    return ran.returncode, "".join(f"{line}\n" for line in lines)


def capture_all(out: Path) -> Path:
    version = _gpg_version()
    target = out / f"gnupg-{version}"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpg-status-") as tmp:
        root = Path(tmp)
        gateway, alice, carol, stranger = parties = [
            Party.make(root, name) for name in ("gateway", "alice", "carol", "stranger")
        ]
        world = World(root, gateway, alice, carol, stranger)
        world.second = world.alice.gpg.generate_key("CERT alice 2", "cert2@alice.example")
        world.unregistered = world.alice.gpg.generate_key("Alice", "alice@home.example")
        world.gateway.knows(world.alice, world.carol)  # Alice's home: her first two keys
        world.gateway.gpg.import_keys(world.alice.gpg.export_public(world.second).encode())
        for party in parties[1:]:
            party.knows(world.gateway)
        for name, make in SCENARIOS.items():
            capture = make(world)
            returncode, lines = _run(world, capture)
            header = {"scenario": name, "gpg": version, "operation": capture.operation}
            header |= {"captured": str(int(time.time())), "exit": str(returncode)}
            header |= capture.facts
            text = "".join(f"# {key}: {value}\n" for key, value in header.items()) + lines
            (target / f"{name}.status").write_text(text, encoding="utf-8")
            print(f"{target.name}/{name}.status: exit {returncode}")
        for party in parties:
            subprocess.run(["gpgconf", "--homedir", str(party.gpg.home), "--kill", "all"],
                           check=False)  # fmt: skip
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: capture_gpg_status.py OUTPUT_DIRECTORY")
    capture_all(Path(sys.argv[1]))
