"""The import graph keeps the architecture: pure domain, adapters apart, internals private."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("orders", "auth", "device_hub", "voice_skill", "dashboard", "restock")
ADAPTERS = ("device_hub", "voice_skill", "dashboard")

# Frameworks of the channels; `orders` serves them all and so imports none of them.
CHANNEL_FRAMEWORKS = {
    "flask",
    "flask_limiter",
    "flask_login",
    "flask_wtf",
    "wtforms",
    "jinja2",
    "werkzeug",
    "waitress",
    "aiocoap",
    "zeroconf",
    "ask_sdk",
    "ask_sdk_core",
    "ask_sdk_model",
    "authlib",
}
# What makes code impure: a database, a driver, a socket.
IO_LIBRARIES = {"sqlalchemy", "psycopg", "psycopg2", "alembic", "sqlite3", "socket"}
# The parts of persistence another package may hold: the unit of work it is handed, and the
# mapped entities whose tables and vocabulary (statuses, kinds, units) `auth` and forms share,
# and the portable list predicates (`sql.py`) every package writing SQL on those tables uses.
PUBLIC_STORE = {"orders.store", "orders.store.db", "orders.store.model", "orders.store.sql"}
# The press batch: its reads and writes are its own, whatever else calls it.
PRESS_BATCH = "orders.services.presses"


@dataclass(frozen=True)
class Import:
    """One edge of the graph: `where` imports module `target` (and `name` from it, if any)."""

    importer: str
    where: str
    target: str
    name: str | None

    def __str__(self) -> str:
        what = f"{self.target}.{self.name}" if self.name else self.target
        return f"{self.where} imports {what}"


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_in(path: Path) -> list[Import]:
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            edges += [Import(module, where, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if _is_module(sub):
                    edges.append(Import(module, where, sub, None))
                else:
                    edges.append(Import(module, where, base, alias.name))
    return edges


@cache
def graph() -> tuple[Import, ...]:
    """Every import in the application packages, function-level and TYPE_CHECKING ones too."""
    edges: list[Import] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            edges += _imports_in(path)
    return tuple(edges)


def _top(dotted: str) -> str:
    return dotted.split(".")[0]


def _in(dotted: str, prefix: str) -> bool:
    return dotted == prefix or dotted.startswith(prefix + ".")


def _listed(edges: list[Import]) -> str:
    return "\n".join(["these imports cross a boundary:", *map(str, edges)])


def _from(package: str) -> list[Import]:
    return [edge for edge in graph() if _in(edge.importer, package)]


def test_the_graph_sees_the_edges_every_channel_has() -> None:
    """The walker finds known imports, so the rules below are not vacuously true."""
    targets = {_top(edge.target) for edge in _from("device_hub")}
    assert {"orders", "aiocoap"} <= targets
    assert any(_in(edge.target, "orders.services") for edge in _from("voice_skill"))
    assert any(_in(edge.target, "orders.domain") for edge in _from("orders.services"))


def test_orders_imports_no_web_coap_voice_or_oauth_framework() -> None:
    """The shared domain imports no Flask, aiocoap, ask_sdk, Authlib, Werkzeug or waitress."""
    bad = [edge for edge in _from("orders") if _top(edge.target) in CHANNEL_FRAMEWORKS]
    assert not bad, _listed(bad)


def test_the_domain_room_is_pure() -> None:
    """orders.domain imports no database or socket library and no other room of orders."""
    rooms = ("orders.store", "orders.services", "orders.queries")
    bad = [
        edge
        for edge in _from("orders.domain")
        if _top(edge.target) in IO_LIBRARIES or any(_in(edge.target, room) for room in rooms)
    ]
    assert not bad, _listed(bad)


def test_the_store_room_serves_and_never_calls_a_use_case() -> None:
    """orders.store imports no service and no query: persistence sits below the use cases."""
    rooms = ("orders.services", "orders.queries")
    bad = [edge for edge in _from("orders.store") if any(_in(edge.target, r) for r in rooms)]
    assert not bad, _listed(bad)


def test_adapters_never_import_each_other() -> None:
    """The hub, the skill and the dashboard each depend on orders and auth, not on a sibling."""
    bad = [
        edge
        for adapter in ADAPTERS
        for edge in _from(adapter)
        if _top(edge.target) in ADAPTERS and _top(edge.target) != adapter
    ]
    assert not bad, _listed(bad)


def test_no_package_imports_another_packages_internals() -> None:
    """auth and the adapters use public names only, and of orders.store only db and model."""
    bad = []
    for importer in ("auth", *ADAPTERS):
        for edge in _from(importer):
            if _top(edge.target) not in {"orders", "auth"} or _top(edge.target) == importer:
                continue
            private = any(part.startswith("_") for part in edge.target.split("."))
            private = private or (edge.name or "").startswith("_")
            persistence = _in(edge.target, "orders.store") and edge.target not in PUBLIC_STORE
            if private or persistence:
                bad.append(edge)
    assert not bad, _listed(bad)


def test_auth_imports_nothing_of_the_press_batch() -> None:
    """auth checks tokens through its own API and never reaches into the press batch."""
    bad = [edge for edge in _from("auth") if _in(edge.target, PRESS_BATCH)]
    assert not bad, _listed(bad)


def test_only_the_composition_root_imports_restock() -> None:
    """orders, auth and the adapters never import restock, which wires them together."""
    bad = [
        edge
        for edge in graph()
        if _top(edge.target) == "restock" and _top(edge.importer) != "restock"
    ]
    assert not bad, _listed(bad)
