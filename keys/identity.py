"""The gateway's own key: create it, adopt an existing one, and find it again.

The fingerprint is recorded in `<gnupg home>/gateway-key.fpr`; a passphrase, when the
adopted key has one, in `gateway-key.passphrase` (mode 0600) beside it, so the service
can sign unattended. Every gateway instance sharing one database holds the same key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contract.errors import GnuPGError, RegistryError
from keys.gpg import GnuPG

FPR_FILE = "gateway-key.fpr"
PASSPHRASE_FILE = "gateway-key.passphrase"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class GatewayIdentity:
    fingerprint: str
    passphrase: str | None = None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def load_identity(gpg: GnuPG) -> GatewayIdentity:
    fpr_path = gpg.home / FPR_FILE
    if not fpr_path.exists():
        raise GnuPGError(f"no gateway key in {gpg.home}: run `clearinghouse init` first")
    fpr = fpr_path.read_text().strip()
    secret = gpg.home / PASSPHRASE_FILE
    return GatewayIdentity(fpr, secret.read_text() if secret.exists() else None)


def create_identity(gpg: GnuPG, name: str, email: str) -> GatewayIdentity:
    """Generate the gateway key (ed25519 + cv25519) unless one exists already."""
    if (gpg.home / FPR_FILE).exists():
        return load_identity(gpg)
    fpr = gpg.generate_key(name, email)
    _write_private(gpg.home / FPR_FILE, fpr + "\n")
    return GatewayIdentity(fpr)


def import_identity(
    gpg: GnuPG, data: bytes, passphrase: str | None, *, address: str | None = None
) -> GatewayIdentity:
    """Adopt an existing secret key, so teams keep encrypting to the key they know.

    With `address` (the gateway address), the key must have a user ID for it: teams'
    mail clients find the key by the address they write to, and every reply comes from it.
    """
    secrets = [k for k in gpg.scan(data) if k.get("type") == "sec"]
    if len(secrets) != 1:
        raise RegistryError(f"the file must hold exactly one secret key, found {len(secrets)}")
    fpr = str(secrets[0]["fingerprint"]).upper()
    if address is not None:
        uids = secrets[0].get("uids")
        _check_address(fpr, [str(u) for u in uids] if isinstance(uids, list) else [], address)
    _prove(gpg, data, fpr, passphrase)
    gpg.import_keys(data, passphrase=passphrase)
    if gpg.details(fpr, secret=True) is None:
        raise RegistryError("GnuPG did not import the secret key")
    identity = GatewayIdentity(fpr, passphrase)
    if passphrase is not None:
        _write_private(gpg.home / PASSPHRASE_FILE, passphrase)
    else:
        (gpg.home / PASSPHRASE_FILE).unlink(missing_ok=True)
    _write_private(gpg.home / FPR_FILE, fpr + "\n")
    return identity


def _check_address(fpr: str, uids: list[str], address: str) -> None:
    """Refuse a key none of whose user IDs is for `address` (as `<address>` or bare)."""
    wanted = address.lower()
    for uid in uids:
        inside = uid[uid.rfind("<") + 1 : uid.rfind(">")] if uid.endswith(">") else uid
        if inside.strip().lower() == wanted:
            return
    raise RegistryError(
        f"key {fpr} has no user ID for gateway_address {address} (its user IDs: "
        f"{'; '.join(uids) or 'none'}): teams' mail clients look the key up by that address. "
        f"Add one (gpg --quick-add-uid {fpr} 'NAME <{address}>') and export the key again, "
        "set gateway_address to an address the key has, or adopt it as it is with "
        "--any-address"
    )


def _prove(gpg: GnuPG, data: bytes, fpr: str, passphrase: str | None) -> None:
    """Show in a scratch keyring that the key can sign and be encrypted to, unattended.

    Only a key that passes is imported into the gateway keyring, so a wrong passphrase
    or an unusable key leaves nothing behind. (The scratch home's gpg-agent exits by
    itself once its socket directory is gone.)
    """
    # Inside the gateway home: secret material stays in the protected directory, and the
    # path stays short enough for gpg-agent's socket (108 bytes).
    with tempfile.TemporaryDirectory(prefix="p", dir=gpg.home) as scratch:
        agent_conf = gpg.home / "gpg-agent.conf"
        if agent_conf.exists():
            shutil.copy(agent_conf, Path(scratch) / "gpg-agent.conf")
        probe = GnuPG(Path(scratch))
        try:
            probe.import_keys(data, passphrase=passphrase)
            if probe.details(fpr, secret=True) is None:
                raise RegistryError("the secret key could not be imported (wrong passphrase?)")
            probe.sign_encrypt(b"probe", [fpr], fpr, passphrase)
        except GnuPGError as exc:
            hint = "wrong passphrase?" if passphrase else "protected? give --passphrase-file"
            raise RegistryError(f"the key cannot sign and encrypt unattended ({hint})") from exc
