"""Portable SQL predicates for list parameters: one statement text whatever the list's length.

Public to every package that writes SQL on `orders`' tables (auth's token checks use them too).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, ColumnElement, any_, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import SelectBase
from sqlalchemy.types import NullType

from orders.store import compat_sqlalchemy


class _InList(ColumnElement[bool]):
    """`column IN (:name)`, where the parameter `name` is a list (see `in_list`)."""

    inherit_cache = True
    _traverse_internals = compat_sqlalchemy.cache_key_fields(column="clause", name="string")
    # Untyped on purpose: a Boolean-typed element in a WHERE renders as `(...) = 1` on
    # backends without a native boolean (SQLite); this one is a predicate already.
    type = NullType()  # type: ignore[assignment]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


def in_list(column: ColumnElement[Any] | QueryableAttribute[Any], name: str) -> ColumnElement[bool]:
    """`column IN (:name)` for a list parameter, one statement text for any list length.

    SQLAlchemy's expanding IN renders one placeholder per value at every execution, so on
    PostgreSQL each batch size is a new statement to parse and plan (and psycopg prepares
    none of them). On PostgreSQL this renders
    `column = ANY(:name)` with the list as one array parameter; elsewhere, expanding IN.
    """
    if isinstance(column, QueryableAttribute):
        column = column.expression
    return _InList(column, name)


@compiles(_InList)
def _in_list_expanding(element: _InList, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(_InList, "postgresql")
def _in_list_any(element: _InList, compiler: SQLCompiler, **kw: Any) -> str:
    values = bindparam(element.name, type_=ARRAY(element.column.type))
    return compiler.process(element.column == any_(values), **kw)


class _InSelect(ColumnElement[bool]):
    """`column IN (SELECT …)` (see `in_select`)."""

    inherit_cache = True
    _traverse_internals = compat_sqlalchemy.cache_key_fields(column="clause", values="clause")
    type = NullType()  # type: ignore[assignment]  # a predicate already (see _InList)

    def __init__(self, column: ColumnElement[Any], values: SelectBase) -> None:
        self.column = column
        self.values = values


def in_select(
    column: ColumnElement[Any] | QueryableAttribute[Any], values: SelectBase
) -> ColumnElement[bool]:
    """`column IN (values)` for a one-column SELECT, planned like `in_list` on PostgreSQL.

    A plain `IN (SELECT …)` becomes a semi-join, and in a generic plan (the flights' plan
    mode) the planner picks its shape once, from the statistics of the moment, which can
    scan every open order once many are open. On PostgreSQL
    this renders `column = ANY(ARRAY(SELECT …))`: the subquery runs once, and its array is
    an index condition, exactly as `in_list`'s array parameter. Elsewhere, plain IN.
    """
    if isinstance(column, QueryableAttribute):
        column = column.expression
    return _InSelect(column, values)


@compiles(_InSelect)
def _in_select_plain(element: _InSelect, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column.in_(element.values), **kw)


@compiles(_InSelect, "postgresql")
def _in_select_array(element: _InSelect, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    values = compiler.process(element.values, asfrom=False, **kw)
    return f"{column} = ANY(ARRAY({values}))"
