"""Private library names are reached only from the compat modules (issue #15, item 3)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auth", "dashboard", "device_hub", "orders", "restock", "voice_skill")
# Underscored names the libraries document as public API.
DOCUMENTED = {
    "_make": "collections.namedtuple's documented constructor from an iterable",
    "_get_current_object": "werkzeug's documented way to unwrap a LocalProxy",
}


def _modules() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def _our_names(paths: list[Path]) -> set[str]:
    """Every name our own code (outside the compat modules) defines or assigns."""
    names: set[str] = set()
    for path in paths:
        if path.name.startswith("compat_"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def test_no_module_but_a_compat_one_touches_a_librarys_private_name() -> None:
    """`x._name` outside `compat_*.py` names something of ours, never a library's internals."""
    paths = _modules()
    ours = _our_names(paths)
    found = []
    for path in paths:
        if path.name.startswith("compat_"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Attribute):
                continue
            name = node.attr
            if not name.startswith("_") or name.startswith("__"):
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if name not in ours and name not in DOCUMENTED:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert found == [], "move these into the library's compat module: " + ", ".join(found)
