"""The SQLAlchemy internals the pipelined flights rely on, reached only from here.

Written against SQLAlchemy 2.1.9 (tests/unit/test_compat.py pins it): on an upgrade,
re-read each name `check()` looks for in the new SQLAlchemy before moving the pin.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

# (owner, name) of the class-level internals used below.
HOOKS: tuple[tuple[Any, str], ...] = (
    # Cache keys of our own clause elements (in_list, in_select).
    (InternalTraversal, "dp_clauseelement"),
    (InternalTraversal, "dp_string"),
    # What tells a statement the driver can run from its compiled text alone.
    (SQLCompiler, "insert_prefetch"),
    (SQLCompiler, "update_prefetch"),
    (SQLCompiler, "returning"),
    # Cursor events fired for statements sent to the driver directly.
    (Connection.dispatch, "before_cursor_execute"),
    (Connection.dispatch, "after_cursor_execute"),
)

_TRAVERSALS = {"clause": "dp_clauseelement", "string": "dp_string"}


class SQLAlchemyChanged(RuntimeError):
    """The installed SQLAlchemy lacks an internal the flights rely on."""


def check() -> None:
    """Raise SQLAlchemyChanged naming every internal the installed SQLAlchemy no longer has."""
    missing = [
        f"{getattr(owner, '__name__', type(owner).__name__)}.{name}"
        for owner, name in HOOKS
        if not hasattr(owner, name)
    ]
    # `binds` is set per compilation: a one-parameter statement shows whether it still is.
    if not isinstance(getattr(select(bindparam("x")).compile(), "binds", None), dict):
        missing.append("SQLCompiler.binds")
    if missing:
        version = importlib.metadata.version("sqlalchemy")
        raise SQLAlchemyChanged(
            f"SQLAlchemy {version} has no {', '.join(missing)}: "
            "update orders/store/compat_sqlalchemy.py before serving"
        )


def cache_key_fields(**fields: str) -> list[tuple[str, InternalTraversal]]:
    """A custom clause element's `_traverse_internals`: attribute -> "clause" or "string"."""
    return [(name, getattr(InternalTraversal, _TRAVERSALS[kind])) for name, kind in fields.items()]


def bind_parameters(compiled: Any) -> dict[str, Any]:
    """The compiled statement's bound parameters by name."""
    return dict(compiled.binds)


def needs_sqlalchemy_execution(compiled: Any) -> bool:
    """Whether only SQLAlchemy's own execution runs `compiled` right: Python-side defaults to
    compute per execution (prefetch), rows to return (RETURNING), or SQL rendered per
    execution (expanding IN)."""
    return bool(
        "POSTCOMPILE" in compiled.string
        or getattr(compiled, "insert_prefetch", None)
        or getattr(compiled, "update_prefetch", None)
        or getattr(compiled, "returning", None)
    )


def before_cursor_execute(conn: Connection, cursor: Any, sql: str, values: Any, many: bool) -> None:
    """Fire the connection's before_cursor_execute listeners, as its own execute does."""
    conn.dispatch.before_cursor_execute(conn, cursor, sql, values, None, many)


def after_cursor_execute(conn: Connection, cursor: Any, sql: str, values: Any, many: bool) -> None:
    """Fire the connection's after_cursor_execute listeners, as its own execute does."""
    conn.dispatch.after_cursor_execute(conn, cursor, sql, values, None, many)
