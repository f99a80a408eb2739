"""The one rule for showing stored text to a person: control characters never pass.

In: any text that came from outside (an envelope address, a header, a key's user ID, a
team name, a detail). Out: the same text with every character that a terminal could
act on written as JSON writes it (`\\u001b`, `\\n`, ...), so an admin's terminal never
receives an escape sequence from stored data (`MAIL FROM:<"\\x1b]0;PWNED\\x07"@x>` would
set the window title, recolour the screen or worse). `--json` output goes through the
same rule: `json.dumps` escapes C0 controls already, and this adds what it leaves (DEL,
the C1 controls, line separators and bidirectional overrides).
"""

from __future__ import annotations

import re

# C0 and DEL and C1 (U+0080-U+009F: CSI is U+009B); the Unicode line and paragraph
# separators; and the bidirectional marks, embeddings, overrides and isolates that make
# a terminal show text in another order than it is stored ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(found: re.Match[str]) -> str:
    char = found.group(0)
    return _SHORT.get(char) or f"\\u{ord(char):04x}"


def printable(text: str, *, keep: str = "") -> str:
    """`text` with each unsafe character escaped as in JSON, except those in `keep`.

    `keep="\\n"` is for text whose line breaks are the printer's own (a multi-line
    message built by the CLI); stored values themselves are printed with `keep=""`,
    so a stored line break cannot fake a line of output either.
    """
    if keep:
        return _UNSAFE.sub(lambda m: m.group(0) if m.group(0) in keep else _escape(m), text)
    return _UNSAFE.sub(_escape, text)
