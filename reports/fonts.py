"""The typeface of every PDF: DejaVu Sans, a Unicode TrueType font embedded in the file.

In: nothing but the font files of Debian's `fonts-dejavu-core` (installed by `make`).
Out: the reportlab names `REGULAR` and `BOLD`, registered once per process by
`register()`, which the PDF modules call before they measure or draw text.

Why not Helvetica: reportlab's standard fonts are not embedded and cover Latin-1 only, so a
team named "CESNET-CERTS Česko", "Ελληνική ομάδα" or "Български екип" came out as black
boxes. DejaVu Sans covers Latin Extended, Greek and Cyrillic; its licence (Bitstream Vera
with public-domain additions) allows embedding, and reportlab embeds only the glyphs a
document uses, so a file grows by a few kilobytes. A missing font is an installation
problem: `register()` raises one line that names the package to install.
"""

from __future__ import annotations

import functools
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from contract.errors import ClearinghouseError

REGULAR = "DejaVuSans"
BOLD = "DejaVuSans-Bold"
PACKAGE = "fonts-dejavu-core"
# Debian's place for the package's files first; the others are where other systems put it.
FONT_DIRECTORIES = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
_FILES = {REGULAR: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf"}


def find(filename: str, directories: tuple[Path, ...] = FONT_DIRECTORIES) -> Path:
    """The first `directories/filename` that exists; a one-line error naming the package."""
    for directory in directories:
        path = directory / filename
        if path.is_file():
            return path
    looked = ", ".join(str(d) for d in directories)
    raise ClearinghouseError(
        f"the PDF font {filename} is missing (looked in {looked}): install Debian's "
        f"{PACKAGE} (apt-get install {PACKAGE}, or run `make deps` as root)"
    )


@functools.cache
def register() -> None:
    """Register DejaVu Sans and its bold weight with reportlab (once; later calls are free).

    The family mapping lets paragraph markup (<b>) switch to the bold file.
    """
    for name, filename in _FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(find(filename))))
    pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR)
