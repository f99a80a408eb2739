"""The only module that talks to GnuPG: one isolated home, strict options, typed results.

Everything else in the gateway sees `CryptoResult`, `SignatureFact` and `KeyDetails`,
never a python-gnupg result: `valid` there means only "GOODSIG" (not trusted, not ours),
so the facts are read from GnuPG's status lines here and judged in `keys/policy.py`.

gpg always runs with `--batch --no-tty --no-verbose` (python-gnupg adds those), an
explicit trust model (`always`: trust comes from the registry's fingerprint pins, never
from the GnuPG web of trust), no key retrieval or import from messages, and a cap on the
bytes it may output (compression bombs). Recipients are named by fingerprint only.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg

from gateway.errors import GnuPGError

STATUS_PREFIX = "[GNUPG:] "


def _options(max_output: int) -> list[str]:
    return [
        "--trust-model",
        "always",
        "--no-auto-key-retrieve",
        "--no-auto-key-import",
        "--auto-key-locate",
        "local",
        "--no-include-key-block",
        "--disable-dirmngr",
        "--no-greeting",
        "--no-symkey-cache",
        "--max-output",
        str(max_output),
    ]


@dataclass(frozen=True)
class SignatureFact:
    """One signature as GnuPG reported it (one NEWSIG ... block)."""

    outcome: str  # good | bad | expired-sig | expired-key | revoked-key | error
    keyid: str | None = None
    signing_fingerprint: str | None = None  # the (sub)key that made it, from VALIDSIG
    primary_fingerprint: str | None = None  # its primary key, from VALIDSIG
    created: datetime | None = None
    error_code: int | None = None  # ERRSIG rc: 9 = no public key


@dataclass(frozen=True)
class CryptoResult:
    """What one decrypt or verify produced, with every fact the policy needs."""

    returncode: int
    data: bytes = b""
    decrypted: bool = False  # DECRYPTION_OKAY and END_DECRYPTION seen, no failure
    encrypted: bool = False  # the input was encrypted at all (BEGIN_DECRYPTION/ENC_TO)
    no_secret_key: bool = False
    signatures: tuple[SignatureFact, ...] = ()
    plaintext_packets: int = 0
    problems: tuple[str, ...] = ()  # ERROR/FAILURE/BADMDC/... status keywords
    output_limited: bool = False  # gpg stopped at --max-output (a compression bomb?)

    @property
    def clean(self) -> bool:
        """GnuPG exited 0 and reported no problem: the precondition of everything."""
        return self.returncode == 0 and not self.problems


@dataclass(frozen=True)
class SubkeyDetails:
    fingerprint: str
    capabilities: str
    created: datetime | None
    expires: datetime | None
    revoked: bool


@dataclass(frozen=True)
class KeyDetails:
    fingerprint: str  # primary
    user_ids: tuple[str, ...]
    capabilities: str
    created: datetime | None
    expires: datetime | None
    revoked: bool
    subkeys: tuple[SubkeyDetails, ...] = field(default=())

    def owns(self, fingerprint: str) -> bool:
        fpr = fingerprint.upper()
        return fpr == self.fingerprint or any(s.fingerprint == fpr for s in self.subkeys)

    def key_for(self, fingerprint: str) -> KeyDetails | SubkeyDetails | None:
        fpr = fingerprint.upper()
        if fpr == self.fingerprint:
            return self
        return next((s for s in self.subkeys if s.fingerprint == fpr), None)


_PROBLEM_KEYWORDS = frozenset(
    {"ERROR", "FAILURE", "BADMDC", "DECRYPTION_FAILED", "NODATA", "UNEXPECTED", "BADARMOR"}
)


_FINGERPRINT = re.compile(r"^(?:[0-9A-F]{40}|[0-9A-F]{64})$")


def _fingerprints(recipients: Sequence[str]) -> list[str]:
    """Recipients by full fingerprint only: never a user ID or key ID gpg would look up."""
    fprs = [r.upper() for r in recipients]
    bad = [r for r in fprs if not _FINGERPRINT.match(r)]
    if bad or not fprs:
        raise GnuPGError(f"recipients must be full fingerprints, got {bad or 'none'}")
    return fprs


def _timestamp(value: str) -> datetime | None:
    if not value or not value.isdigit() or value == "0":
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _status_lines(stderr: str) -> Iterable[tuple[str, list[str]]]:
    for line in stderr.splitlines():
        if line.startswith(STATUS_PREFIX):
            keyword, *args = line[len(STATUS_PREFIX) :].split(" ")
            yield keyword, args


class _SignatureCollector:
    """Groups status lines into one `SignatureFact` per NEWSIG block."""

    _OUTCOMES = {
        "GOODSIG": "good",
        "BADSIG": "bad",
        "EXPSIG": "expired-sig",
        "EXPKEYSIG": "expired-key",
        "REVKEYSIG": "revoked-key",
        "ERRSIG": "error",
    }

    def __init__(self) -> None:
        self.facts: list[dict[str, object]] = []

    def feed(self, keyword: str, args: list[str]) -> None:
        if keyword == "NEWSIG":
            self.facts.append({"outcome": "error"})
            return
        if not self.facts and (keyword in self._OUTCOMES or keyword == "VALIDSIG"):
            self.facts.append({"outcome": "error"})  # gpg < 2.1 emits no NEWSIG
        if keyword in self._OUTCOMES:
            current = self.facts[-1]
            current["outcome"] = self._OUTCOMES[keyword]
            current["keyid"] = args[0] if args else None
            if keyword == "ERRSIG" and len(args) >= 6:
                current["error_code"] = int(args[5]) if args[5].isdigit() else None
                current["created"] = _timestamp(args[4])
        elif keyword == "VALIDSIG" and len(args) >= 3:
            current = self.facts[-1]
            current["signing_fingerprint"] = args[0].upper()
            current["created"] = _timestamp(args[2])
            current["primary_fingerprint"] = (args[9] if len(args) >= 10 else args[0]).upper()

    def result(self) -> tuple[SignatureFact, ...]:
        return tuple(SignatureFact(**f) for f in self.facts)  # type: ignore[arg-type]


def parse_status(returncode: int, stderr: str, data: bytes) -> CryptoResult:
    """Turn GnuPG's status stream into a `CryptoResult` (pure; tested directly)."""
    sigs = _SignatureCollector()
    seen: set[str] = set()
    problems: list[str] = []
    plaintexts = layers = 0
    for keyword, args in _status_lines(stderr):
        seen.add(keyword)
        sigs.feed(keyword, args)
        if keyword == "PLAINTEXT":
            plaintexts += 1
        if keyword == "BEGIN_DECRYPTION":
            layers += 1
        if keyword in _PROBLEM_KEYWORDS:
            problems.append(keyword + (" " + " ".join(args) if args else ""))
    if layers > 1:
        # gpg decrypts encrypted packets nested inside encrypted packets on its own; only
        # one layer may be removed (SPEC step 2), so the whole result is refused.
        problems.append(f"NESTED_ENCRYPTION {layers}")
    decrypted = (
        "DECRYPTION_OKAY" in seen and "END_DECRYPTION" in seen and "DECRYPTION_FAILED" not in seen
    )
    return CryptoResult(
        returncode=returncode,
        data=data,
        decrypted=decrypted,
        encrypted=bool(seen & {"BEGIN_DECRYPTION", "ENC_TO", "NO_SECKEY", "DECRYPTION_FAILED"}),
        no_secret_key="NO_SECKEY" in seen and not decrypted,
        signatures=sigs.result(),
        plaintext_packets=plaintexts,
        problems=tuple(problems),
        # Not a status line: gpg only logs it. Safe to read from stderr because gpg runs
        # with --no-verbose, so no attacker-chosen text (literal file names) is logged.
        output_limited="exceeded --max-output limit" in stderr,
    )


class GnuPG:
    """One isolated GnuPG home. Thread-safe in the way gpg itself is (one process a call)."""

    def __init__(
        self, home: Path, *, max_output: int = 26_214_400, extra_options: Sequence[str] = ()
    ) -> None:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        self.home = home
        options = _options(max_output) + list(extra_options)
        self._gpg = gnupg.GPG(gnupghome=str(home), options=options)
        # latin-1 maps every byte: gpg's stderr can carry attacker-chosen non-UTF-8 bytes,
        # and python-gnupg decodes it strictly in a reader thread that would die on them
        # (losing the status lines after). User IDs are re-decoded as UTF-8 in _details.
        self._gpg.encoding = "latin-1"
        # Key listings, by (fingerprint, secret), for as long as the keyring is unchanged.
        self._listed: dict[tuple[str, bool], KeyDetails | None] = {}
        self._listed_state: tuple[int, ...] = ()
        self._listed_lock = threading.Lock()

    # --- keys -------------------------------------------------------------------------

    def generate_key(self, name: str, email: str, *, expire: str = "0") -> str:
        """Make an ed25519 signing key with a cv25519 encryption subkey, no passphrase."""
        params = (
            "Key-Type: EDDSA\nKey-Curve: ed25519\nKey-Usage: sign\n"
            "Subkey-Type: ECDH\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n"
            f"Name-Real: {name}\nName-Email: {email}\nExpire-Date: {expire}\n"
            "%no-protection\n%commit\n"
        )
        result = self._gpg.gen_key(params.encode("utf-8"))  # bytes: user IDs are UTF-8
        if not result.fingerprint:
            raise GnuPGError(f"key generation failed: {result.stderr[-300:]}")
        return str(result.fingerprint).upper()

    def scan(self, data: bytes) -> list[dict[str, object]]:
        """List the keys in `data` without importing them."""
        return list(self._gpg.scan_keys_mem(data))

    def contains_secret(self, data: bytes) -> bool:
        return any(k.get("type") in ("sec", "ssb") for k in self.scan(data))

    def import_keys(self, data: bytes, passphrase: str | None = None) -> list[str]:
        """Import `data`; returns the primary fingerprints it carried."""
        extra = ["--pinentry-mode", "loopback"] if passphrase is not None else None
        result = self._gpg.import_keys(data, passphrase=passphrase, extra_args=extra)
        fprs = {str(f).upper() for f in result.fingerprints if f}
        primaries = {str(k["fingerprint"]).upper() for k in self.scan(data)}
        return sorted(fprs & primaries or primaries & set(self._known()))

    def _known(self) -> list[str]:
        return [str(k["fingerprint"]).upper() for k in self._gpg.list_keys()]

    def details(self, fingerprint: str, *, secret: bool = False) -> KeyDetails | None:
        """The key's details, None if it is not in the keyring.

        Remembered until the keyring changes (in this process or any other): every
        message asks for its signer's key and for its team's, and a listing costs a gpg
        process. Nothing in `KeyDetails` depends on the time of asking.
        """
        wanted, state = (fingerprint.upper(), secret), self._keyring_state()
        with self._listed_lock:
            if state != self._listed_state:
                self._listed, self._listed_state = {}, state
            if wanted in self._listed:
                return self._listed[wanted]
        keys = self._gpg.list_keys(secret=secret, keys=[fingerprint])
        match = [k for k in keys if str(k["fingerprint"]).upper() == fingerprint.upper()]
        found = _details(match[0]) if match else None
        with self._listed_lock:
            if state == self._listed_state:  # else it changed meanwhile: not worth keeping
                self._listed[wanted] = found
        return found

    def _keyring_state(self) -> tuple[int, ...]:
        """What changes whenever gpg adds, changes or deletes a public or secret key."""
        stamps: list[int] = []
        for name in ("pubring.kbx", "private-keys-v1.d"):
            try:
                st = os.stat(self.home / name)
            except FileNotFoundError:
                stamps += (0, 0, 0)
                continue
            stamps += (st.st_mtime_ns, st.st_size, st.st_ino)
        return tuple(stamps)

    def keys_for_address(self, address: str) -> list[KeyDetails]:
        """Public keys with a user ID for exactly `address` (gpg's `<address>` match)."""
        keys = self._gpg.list_keys(keys=[f"<{address}>"])
        return [_details(k) for k in keys]

    def export_public(self, fingerprint: str) -> str:
        armored = str(self._gpg.export_keys(fingerprint, minimal=True))
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise GnuPGError(f"no public key {fingerprint} in the gateway keyring")
        return armored

    def delete_public(self, fingerprint: str) -> None:
        self._gpg.delete_keys(fingerprint)

    # --- decrypt and verify -------------------------------------------------------------

    def decrypt(self, data: bytes, passphrase: str | None = None) -> CryptoResult:
        extra = ["--pinentry-mode", "loopback"] if passphrase is not None else None
        result = self._gpg.decrypt(data, passphrase=passphrase, extra_args=extra)
        return parse_status(result.returncode or 0, result.stderr or "", result.data or b"")

    def verify_detached(self, signed: bytes, signature: bytes) -> CryptoResult:
        with tempfile.TemporaryDirectory(dir=self.home, prefix="sig-") as tmp:
            sig_path = Path(tmp) / "signature.asc"
            sig_path.write_bytes(signature)
            result = self._gpg.verify_data(str(sig_path), signed)
        return parse_status(result.returncode or 0, result.stderr or "", b"")

    def verify_clearsigned(self, data: bytes) -> CryptoResult:
        """Verify an inline (cleartext-signed) message and return the signed text.

        Run as `--verify --output -`, not `--decrypt`: the armor after "BEGIN PGP
        SIGNATURE" may hold any packets, and only in verify mode does gpg refuse encrypted
        ones (UNEXPECTED) instead of decrypting them with the gateway's key.
        """
        result = self._gpg.verify_file(io.BytesIO(data), extra_args=["--output", "-"])
        return parse_status(result.returncode or 0, result.stderr or "", result.data or b"")

    # --- sign and encrypt ---------------------------------------------------------------

    def sign_encrypt(
        self, data: bytes, recipients: list[str], signer: str, passphrase: str | None = None
    ) -> str:
        """One combined OpenPGP message, signed by `signer`, encrypted to `recipients`."""
        result = self._gpg.encrypt(
            data,
            _fingerprints(recipients),
            sign=signer,
            armor=True,
            always_trust=True,
            passphrase=passphrase,
            extra_args=["--pinentry-mode", "loopback"] if passphrase is not None else None,
        )
        if not result.ok:
            raise GnuPGError(f"sign+encrypt failed: {result.status}")
        return str(result.data.decode("ascii"))

    def sign_detached(self, data: bytes, signer: str, passphrase: str | None = None) -> str:
        result = self._gpg.sign(
            data,
            keyid=signer,
            detach=True,
            passphrase=passphrase,
            extra_args=["--pinentry-mode", "loopback"] if passphrase is not None else None,
        )
        if not result.data:
            raise GnuPGError(f"signing failed: {result.status}")
        return str(result.data.decode("ascii"))

    def encrypt(self, data: bytes, recipients: list[str]) -> str:
        result = self._gpg.encrypt(data, _fingerprints(recipients), armor=True)
        if not result.ok:
            raise GnuPGError(f"encryption failed: {result.status}")
        return str(result.data.decode("ascii"))


def _utf8(latin1: str) -> str:
    return latin1.encode("latin-1", "replace").decode("utf-8", "replace")


def _details(raw: dict[str, Any]) -> KeyDetails:
    subs = []
    for sub in (raw.get("subkey_info") or {}).values():
        subs.append(
            SubkeyDetails(
                fingerprint=str(sub.get("fingerprint", "")).upper(),
                capabilities=str(sub.get("cap", "")),
                created=_timestamp(str(sub.get("date", ""))),
                expires=_timestamp(str(sub.get("expires", ""))),
                revoked=sub.get("trust") == "r",
            )
        )
    return KeyDetails(
        fingerprint=str(raw["fingerprint"]).upper(),
        user_ids=tuple(_utf8(str(u)) for u in raw.get("uids") or []),
        capabilities=str(raw.get("cap", "")),
        created=_timestamp(str(raw.get("date", ""))),
        expires=_timestamp(str(raw.get("expires", ""))),
        revoked=raw.get("trust") == "r",
        subkeys=tuple(subs),
    )
