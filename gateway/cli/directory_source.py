"""Where `teams sync --ti` reads TI's directory from: a file, standard input, or HTTPS.

In: what the operator gave (`teams.json`, `-`, `https://...`) and the byte cap. Out: an
open binary stream for `keys.directory.read_directory`, which parses it as it arrives and
stops at the cap; or a one-line error. A file or a response that says it is larger than
the cap is refused before a byte is read. Only `https://` is fetched, with the system's
certificate authorities (or `context`) and verification always on: the directory decides
which teams may submit, so it must come from TI and nobody in between.
"""

from __future__ import annotations

import os
import ssl
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from contract.errors import ConfigError, DirectoryError

TIMEOUT_SECONDS = 60


@contextmanager
def open_source(
    where: str,
    max_bytes: int,
    *,
    stdin: IO[bytes],
    context: ssl.SSLContext | None = None,
) -> Iterator[IO[bytes]]:
    if where == "-":
        yield stdin
    elif where.lower().startswith("https://"):
        with _fetch(where, max_bytes, context) as response:
            yield response
    elif "://" in where:
        raise ConfigError(f"--ti {where}: only https:// URLs are fetched (or give a file)")
    else:
        with _open_file(where, max_bytes) as stream:
            yield stream


@contextmanager
def _open_file(path: str, max_bytes: int) -> Iterator[IO[bytes]]:
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, after the caller's block
    except OSError as exc:
        raise DirectoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with stream:
        info = os.fstat(stream.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
            raise DirectoryError(_too_large(path, info.st_size, max_bytes))
        yield stream


@contextmanager
def _fetch(url: str, max_bytes: int, context: ssl.SSLContext | None) -> Iterator[IO[bytes]]:
    agent = {"User-Agent": "clearinghouse teams sync"}
    request = urllib.request.Request(url, headers=agent)  # noqa: S310 - https only, checked
    tls = context or ssl.create_default_context()
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=tls)  # noqa: S310 - https only, checked above
    except urllib.error.HTTPError as exc:
        raise DirectoryError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DirectoryError(f"cannot fetch {url}: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise DirectoryError(_too_large(url, int(length), max_bytes))
        yield response


def _too_large(where: str, size: int, max_bytes: int) -> str:
    return (
        f"{where} is {size} bytes, more than [registry] ti_max_bytes ({max_bytes}): is it "
        "TI's teams.json? If the directory has grown, raise the limit"
    )
