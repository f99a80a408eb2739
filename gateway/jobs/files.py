"""Files the jobs write: atomically and durably, and the secret behind the pseudonyms.

`atomic_write` is how every statistics file and every file of the public site reaches the
disk: readers (a web server, a backup) see the old file or the new, never half of one.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from contract.errors import ClearinghouseError

SECRET_FILE = "statistics.key"  # noqa: S105 - a file name, not a secret


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so that readers see the old file or the new, never half;
    the file has `mode` from the start (0644 for what is published, 0600 otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pseudonym_secret(home: Path) -> bytes:
    """The secret behind the pseudonyms, created (mode 0600) on first use."""
    path = home / SECRET_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=home, prefix=f".{SECRET_FILE}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            # link() refuses to replace: two first runs at once agree on one secret.
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            Path(temp).unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) < 16:
        raise ClearinghouseError(f"{path} is too short to be a pseudonym secret")
    return secret
