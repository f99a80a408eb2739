"""tests/data/: every sample file is described in its README, and every file the README
describes is there (a sample nobody can explain is one nobody dares to change)."""

from __future__ import annotations

import re

from samples import DATA


def test_the_readme_lists_every_sample_and_no_other() -> None:
    on_disk = {path.relative_to(DATA).as_posix() for path in DATA.rglob("*.eml")}
    listed = set(re.findall(r"^\| `([^`]+\.eml)` \|", (DATA / "README.md").read_text(), re.M))
    assert on_disk, "no samples found"
    assert sorted(on_disk - listed) == [], "samples the README does not describe"
    assert sorted(listed - on_disk) == [], "samples the README describes that are missing"
