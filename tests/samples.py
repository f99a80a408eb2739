"""The static sample messages under tests/data/, read byte for byte.

What each sample is, and which test reads it: tests/data/README.md. Samples that must be
signed or encrypted with keys the fixtures generate are built in code, not stored.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def sample(name: str) -> bytes:
    """The bytes of tests/data/NAME, for example "mime/missing-boundary.eml"."""
    return (DATA / name).read_bytes()


def samples(folder: str) -> dict[str, bytes]:
    """Every .eml file in tests/data/FOLDER, by name without ".eml", in name order.

    An empty or missing folder fails at once: a parametrized test over it would
    otherwise be skipped without a word.
    """
    found = {path.stem: path.read_bytes() for path in sorted((DATA / folder).glob("*.eml"))}
    assert found, f"no .eml samples in {DATA / folder}"
    return found
