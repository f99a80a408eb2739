"""The Trusted Introducer directory: TI's `teams.json` export read into typed entries.

In: the export's bytes as a binary stream (a file, standard input, an HTTPS response),
parsed as they arrive (ijson), and a cap on how many bytes may be read. Out: a
`Directory` of `DirectoryEntry`s, or one `DirectoryError` naming the source, the entry
(its number and short name) and what is wrong. Nothing here touches the store, so bad
input changes nothing.

The format (docs/reference.md "Trusted Introducer directory"): a JSON array of teams, each with
`short_name`, `official_name`, `country` {code}, `classification` {code l|a|c, name,
since}, `emails` [{address, usage}] and `pgp_keys` [{fingerprint (spaced hex), expires}].
Other fields (constituency, phones, misp ...) are ignored. `usage` is a list of words in
TI's export and a single word in older ones; both are read. Short names are compared as
an admin types them: case and runs of spaces do not matter (`link_key`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import IO, Any, Literal

import ijson

from contract.errors import DirectoryError, RegistryError

Classification = Literal["l", "a", "c"]
# TI's classification -> the registry's status (l -> listed, a -> accredited, ...).
STATUS_OF: Mapping[str, str] = {"l": "listed", "a": "accredited", "c": "certified"}
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:[T ].*)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME = 100


@dataclass(frozen=True)
class DirectoryKey:
    fingerprint: str  # 40 upper-case hex digits, no spaces
    expires: date | None


@dataclass(frozen=True)
class DirectoryEntry:
    short_name: str
    official_name: str
    country: str | None
    classification: Classification
    classification_name: str
    since: date | None
    emails: tuple[tuple[str, tuple[str, ...]], ...]  # (address, usage words)
    keys: tuple[DirectoryKey, ...]

    @property
    def status(self) -> str:
        return STATUS_OF[self.classification]

    @property
    def contact(self) -> str | None:
        """The first address whose usage says `contact`: where the team wants mail."""
        return next((a for a, usage in self.emails if "contact" in usage), None)

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(k.fingerprint for k in self.keys)


@dataclass(frozen=True)
class Directory:
    source: str  # what the operator gave: a path, a URL or "-"
    entries: tuple[DirectoryEntry, ...]

    @cached_property
    def _by_key(self) -> dict[str, DirectoryEntry]:
        return {link_key(e.short_name): e for e in self.entries}

    def find(self, short_name: str) -> DirectoryEntry | None:
        return self._by_key.get(link_key(short_name))


def link_key(short_name: str) -> str:
    """How two spellings of a short name are compared: case and spacing ignored."""
    return " ".join(short_name.split()).casefold()


def check_link_name(short_name: str) -> str:
    """A TI short name as an admin gives it (`--ti`, `set-ti`), with its spaces tidied."""
    name = " ".join(short_name.split())
    if not name or len(name) > MAX_NAME or _CONTROL.search(name):
        raise RegistryError(
            f"TI short name {short_name!r} must be 1 to {MAX_NAME} printable characters, "
            "as the directory spells it (its `short_name`)"
        )
    return name


class _TooLarge(Exception):
    pass


class _Capped:
    """A binary stream that refuses to give more than `limit` bytes in all."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream, self._left = stream, limit
        self.seen = 0

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size < 0 else min(size, self._left + 1)
        data = self._stream.read(want)
        self._left -= len(data)
        self.seen += len(data.strip())
        if self._left < 0:
            raise _TooLarge
        return data


def read_directory(stream: IO[bytes], *, source: str, max_bytes: int) -> Directory:
    """Parse and check the whole export; DirectoryError at the first problem."""
    entries: list[DirectoryEntry] = []
    capped = _Capped(stream, max_bytes)
    try:
        for number, raw in enumerate(_items(capped, source), start=1):
            entries.append(_entry(raw, number, source))
    except _TooLarge:
        raise DirectoryError(
            f"{source} is larger than {max_bytes} bytes ([registry] ti_max_bytes): is it "
            "TI's teams.json? If the directory has grown, raise the limit"
        ) from None
    except ijson.JSONError as exc:
        if not capped.seen:
            raise DirectoryError(f"{source} is empty; expected TI's teams.json") from None
        where = f"after entry {len(entries)}" if entries else "before its first entry"
        first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else "incomplete"
        raise DirectoryError(f"{source} is not valid JSON ({first}) {where}") from None
    except OSError as exc:  # a network stream that broke off, a disk that failed
        raise DirectoryError(f"{source}: reading failed: {exc}") from None
    if not entries:
        raise DirectoryError(f"{source} lists no teams: is it the whole directory export?")
    _refuse_duplicates(entries, source)
    return Directory(source, tuple(entries))


def _items(stream: _Capped, source: str) -> Iterator[Any]:
    events = ijson.parse(stream)
    first = next(events)  # an empty stream raises ijson's "premature EOF"
    if first[1] != "start_array":
        found = {"start_map": "an object"}.get(first[1], f"a single {first[1]}")
        raise DirectoryError(f"{source} holds {found}, not a JSON array of teams")
    items: Iterator[Any] = ijson.items(itertools.chain([first], events), "item")
    return items


def _refuse_duplicates(entries: list[DirectoryEntry], source: str) -> None:
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        earlier = seen.setdefault(link_key(entry.short_name), number)
        if earlier != number:
            raise DirectoryError(
                f"{source}: entries {earlier} and {number} have the same short_name "
                f"{entry.short_name!r}; a team cannot be linked to either"
            )


def _entry(raw: Any, number: int, source: str) -> DirectoryEntry:
    if not isinstance(raw, dict):
        raise DirectoryError(f"{source}: entry {number} is not a JSON object")
    name = raw.get("short_name")
    if not isinstance(name, str) or not name.strip() or _CONTROL.search(name):
        raise DirectoryError(f"{source}: entry {number} has no usable short_name")
    where = f"{source}: entry {number} ({name!r})"
    code, label, since = _classification(raw.get("classification"), where)
    country = raw.get("country")
    return DirectoryEntry(
        short_name=" ".join(name.split()),
        official_name=_text(raw.get("official_name")),
        country=_text(country.get("code")) or None if isinstance(country, dict) else None,
        classification=code,
        classification_name=label,
        since=since,
        emails=_emails(raw.get("emails"), where),
        keys=_keys(raw.get("pgp_keys"), where),
    )


def _classification(raw: Any, where: str) -> tuple[Classification, str, date | None]:
    if not isinstance(raw, dict) or "code" not in raw:
        raise DirectoryError(f"{where} has no classification code")
    code = raw["code"]
    if code not in STATUS_OF:
        raise DirectoryError(
            f"{where}: unknown classification code {code!r} (TI uses l, a or c: "
            "listed, accredited, certified)"
        )
    since = _date(raw.get("since"), f"{where}: classification.since")
    return code, _text(raw.get("name")), since


def _emails(raw: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = []
    for index, item in enumerate(_list(raw, f"{where}: emails")):
        address = item.get("address") if isinstance(item, dict) else None
        if not isinstance(address, str):
            raise DirectoryError(f"{where}: emails[{index}] has no address")
        usage = item.get("usage")
        words = [usage] if isinstance(usage, str) else usage if isinstance(usage, list) else []
        found.append((address.strip(), tuple(str(w).casefold() for w in words)))
    return tuple(found)


def _keys(raw: Any, where: str) -> tuple[DirectoryKey, ...]:
    found = []
    for index, item in enumerate(_list(raw, f"{where}: pgp_keys")):
        at = f"{where}: pgp_keys[{index}]"
        value = item.get("fingerprint") if isinstance(item, dict) else None
        fingerprint = "".join(value.split()).upper() if isinstance(value, str) else ""
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise DirectoryError(
                f"{at}: fingerprint {value!r} is not 40 hex digits (spaces and case ignored)"
            )
        found.append(DirectoryKey(fingerprint, _date(item.get("expires"), f"{at}.expires")))
    return tuple(found)


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise DirectoryError(f"{where} is not a JSON array")
    return raw


def _date(raw: Any, where: str) -> date | None:
    if raw is None or raw == "":
        return None
    match = _DATE.fullmatch(raw) if isinstance(raw, str) else None
    try:
        return date.fromisoformat(match[1]) if match else _bad_date(raw, where)
    except ValueError:
        return _bad_date(raw, where)


def _bad_date(raw: Any, where: str) -> date:
    raise DirectoryError(f"{where} {raw!r} is not a date (YYYY-MM-DD)")


def _text(raw: Any) -> str:
    return _CONTROL.sub("", raw).strip() if isinstance(raw, str) else ""
