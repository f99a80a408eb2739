"""The house's rules that a reader relies on: the package graph runs one way, and modules
stay small enough to read (README.md "Layout", docs/architecture.md).

contract <- parsers <- store <- keys <- reports <- gateway: a module imports only from its
own package and the packages to its left.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("contract", "parsers", "store", "keys", "reports", "gateway")
MAX_LINES = 350
LONG_BECAUSE = "Longer than most modules because"


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_packages(path: Path) -> set[tuple[str, int]]:
    """The project packages `path` imports, each with the line of its first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top in LAYERS:
                found.setdefault(top, node.lineno)
    return set(found.items())


def upward_imports(layers: tuple[str, ...] = LAYERS, root: Path = ROOT) -> list[str]:
    """Every import of a package to the right of the importing module's own."""
    wrong = []
    for rank, package in enumerate(layers):
        allowed = set(layers[: rank + 1])
        for path in sorted((root / package).rglob("*.py")):
            for imported, line in sorted(_imported_packages(path)):
                if imported not in allowed:
                    wrong.append(f"{path.relative_to(root)}:{line} imports {imported}")
    return wrong


def test_the_package_graph_runs_one_way() -> None:
    assert upward_imports() == []


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    # The check itself, on a tree made here: keys/ importing gateway/ is caught, and
    # gateway/ importing keys/ is not.
    for package, body in [
        ("contract", ""),
        ("parsers", ""),
        ("store", ""),
        ("keys", "from gateway.app import App\n"),
        ("reports", ""),
        ("gateway", "import keys.gpg\n"),
    ]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(body)
    assert upward_imports(root=tmp_path) == ["keys/mod.py:1 imports gateway"]


@pytest.mark.parametrize("package", LAYERS)
def test_modules_are_short_or_say_why(package: str) -> None:
    long = []
    for path in _modules(package):
        text = path.read_text()
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and LONG_BECAUSE not in docstring:
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert long == []


@pytest.mark.parametrize("package", LAYERS)
def test_every_module_opens_with_a_docstring(package: str) -> None:
    bare = [
        str(path.relative_to(ROOT))
        for path in _modules(package)
        if path.name != "__init__.py"
        and path.parent.name != "versions"  # Alembic revisions carry their own header
        and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert bare == []
