"""Statements sent together: on PostgreSQL one round trip for many statements.

The press batch is the hottest transaction in Restock, and on a busy host each round trip
to PostgreSQL costs far more than the statement it carries (both ends must be woken and
scheduled). So a batch is two flights whatever its size: BEGIN, the token check and the
reads that lock and decide; then every write and the COMMIT. psycopg's pipeline mode
sends statements without waiting for each one's answer. SQLAlchemy has no pipeline API,
and two of its habits defeat one (it reads a SELECT's rows the moment it is executed;
psycopg sends its own BEGIN and waits for it), so this module drives the driver under
SQLAlchemy for these few statements: built and compiled by SQLAlchemy once, their rows
converted by SQLAlchemy's own type processors, every driver error wrapped as SQLAlchemy
would wrap it. The SQLAlchemy internals it needs are in compat_sqlalchemy.py.

Kept over plain SQLAlchemy execution for the press batch's round trips (bench/README.md).
Elsewhere (SQLite: in-process, no round trips) everything here is plain SQLAlchemy.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    Executable,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import FromClause, SelectBase

from orders.store import compat_sqlalchemy

# A statement and its parameters: one dict, or a list of dicts (executemany). Statements
# whose rows nobody reads, so they can go to the server without waiting for each other.
Write = tuple[Executable, Any]
Read = tuple[SelectBase, Mapping[str, Any]]

# In a connection's info while its transaction's BEGIN waits for the first flight.
_BEGIN_PENDING = "restock_begin_pending"
# What that BEGIN sends. Generic plans: PostgreSQL would otherwise re-plan the flights'
# prepared statements whenever it guesses a custom plan wins, for the same `= ANY($1)` plan.
_BEGIN = ("BEGIN", "SET LOCAL plan_cache_mode = force_generic_plan")


def insert_rows(dialect: str, table: FromClause, rows: Sequence[dict[str, Any]]) -> Write:
    """Many rows into `table` (a mapped class's __table__; every row names the same columns).

    On PostgreSQL one INSERT … SELECT unnest(…) with one array parameter per column: an
    executemany there is one Bind/Execute per row, each with its client and server
    overhead. Elsewhere (SQLite, in-process), a plain executemany.
    """
    assert isinstance(table, Table)
    if dialect != "postgresql":
        return _executemany_insert(table), rows
    return unnest_insert(table, tuple(rows[0])), unnest_params(rows)


@functools.cache
def _executemany_insert(table: Table) -> Executable:
    return insert(table).inline()  # no RETURNING: nothing reads the new ids


@functools.cache
def unnest_insert(table: FromClause, columns: tuple[str, ...], prefix: str = "") -> Insert:
    """PostgreSQL: INSERT … SELECT unnest(:col) … for rows naming `columns` (see insert_rows).

    Each column's array is the parameter `prefix` + its name (`unnest_params`): prefixes
    tell apart the same column name of several tables written by one statement.
    """
    assert isinstance(table, Table)
    # INSERT … SELECT cannot call Python-side defaults per row: the rows must name them.
    unnamed = {c.name for c in table.columns if c.default is not None} - set(columns)
    if unnamed:
        raise ValueError(f"rows for {table.name} must name {', '.join(sorted(unnamed))}")
    targets = [table.c[name] for name in columns]
    # Several set-returning functions in one select list advance in lockstep (PostgreSQL 10+).
    arrays = [func.unnest(bindparam(prefix + c.name, type_=ARRAY(c.type))) for c in targets]
    return insert(table).from_select(targets, select(*arrays), include_defaults=False)


def unnest_params(rows: Sequence[Mapping[str, Any]], prefix: str = "") -> dict[str, list[Any]]:
    """The parameters of `unnest_insert` for `rows`: one list per column."""
    return {prefix + name: [row[name] for row in rows] for name in rows[0]}


def _pipelined(conn: Connection) -> Any:
    """The psycopg connection under `conn` when it can pipeline, else None."""
    if conn.dialect.name != "postgresql":
        return None
    driver = conn.connection.driver_connection
    return driver if hasattr(driver, "pipeline") else None


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A Core connection for one write transaction, ended by `write_and_commit`.

    On PostgreSQL the driver runs in autocommit and BEGIN is sent by the first flight
    (`read_rows` or `write_and_commit`) instead of on its own; the transaction uses
    generic plans (see `_BEGIN`). A plain `conn.execute`
    before any flight sends the BEGIN first (one round trip), so nothing run on the
    connection can fall outside the transaction. On error the pool's
    reset-on-return rolls it back (psycopg's rollback ends a server-side transaction in
    autocommit mode too; tests/integration/test_flights.py checks no lock is left).
    """
    with engine.connect() as conn:
        if _pipelined(conn) is None:
            yield conn
            return
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.info[_BEGIN_PENDING] = True
        event.listen(conn, "before_cursor_execute", _begin_if_pending)
        try:
            yield conn
        finally:
            event.remove(conn, "before_cursor_execute", _begin_if_pending)
            conn.info.pop(_BEGIN_PENDING, None)  # info outlives the checkout


def _begin_if_pending(conn: Connection, *_: Any) -> None:
    if conn.info.pop(_BEGIN_PENDING, False):
        driver = conn.connection.driver_connection
        with driver.pipeline():  # type: ignore[union-attr]
            _send_begin(driver)


def _send_begin(driver: Any) -> None:
    for statement in _BEGIN:
        driver.execute(statement)


@dataclass(frozen=True)
class _Compiled:
    """A statement compiled once for the driver, with SQLAlchemy's converters for its values."""

    sql: str
    compiled: Any
    bind_processors: dict[str, Callable[[Any], Any]]

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        values = self.compiled.construct_params(params)
        for name, process in self.bind_processors.items():
            if values.get(name) is not None:
                values[name] = process(values[name])
        return dict(values)


@dataclass(frozen=True)
class _CompiledRead(_Compiled):
    """A SELECT, with the row type and converters for what it returns."""

    row: Any  # a namedtuple class: rows read by attribute, like SQLAlchemy's
    result_processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, converter)

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        if not self.result_processors:
            return [self.row._make(values) for values in raw]
        rows = []
        for values in raw:
            converted = list(values)
            for index, process in self.result_processors:
                converted[index] = process(converted[index])
            rows.append(self.row._make(converted))
        return rows


def _bind_processors(compiled: Any, dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    binds: dict[str, Callable[[Any], Any]] = {}
    for name, bind in compat_sqlalchemy.bind_parameters(compiled).items():
        impl = bind.type.dialect_impl(dialect)
        if (
            isinstance(impl, ARRAY)
            and impl.item_type.dialect_impl(dialect).bind_processor(dialect) is None
        ):
            # SQLAlchemy's ARRAY processor would only copy the list, element by element.
            binds[name] = _as_list
            continue
        process = impl.bind_processor(dialect)
        if process is not None:
            binds[name] = process
    return binds


def _as_list(value: Any) -> list[Any]:
    return value if type(value) is list else list(value)


@functools.cache
def _compiled_read(statement: SelectBase, dialect: Dialect) -> _CompiledRead:
    compiled = statement.compile(dialect=dialect)
    if "POSTCOMPILE" in compiled.string:
        raise ValueError("a pipelined read needs one text for every execution: use in_list()")
    columns = list(statement.selected_columns)
    return _CompiledRead(
        sql=compiled.string,
        compiled=compiled,
        bind_processors=_bind_processors(compiled, dialect),
        row=namedtuple("Row", [c.key or f"c{i}" for i, c in enumerate(columns)], rename=True),
        result_processors=tuple(
            (index, process)
            for index, c in enumerate(columns)
            if (process := c.type.dialect_impl(dialect).result_processor(dialect, None))
        ),
    )


@functools.cache
def _compiled_write(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...]
) -> _Compiled | None:
    """`statement` compiled for parameters named `keys`, or None when only SQLAlchemy's
    own execution gets it right: Python-side defaults to compute per execution (prefetch),
    rows to return (RETURNING), or SQL rendered per execution (expanding IN). Columns set
    by SQL expressions ("postfetch") need nothing at execution: only the ORM reads them."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if compat_sqlalchemy.needs_sqlalchemy_execution(compiled):
        return None
    return _Compiled(compiled.string, compiled, _bind_processors(compiled, dialect))


def read_rows(conn: Connection, reads: Sequence[Read]) -> list[list[Any]]:
    """Run SELECTs in order and return each one's rows; on PostgreSQL in one round trip.

    Each still runs as its own statement on the server, one after the other, so a read
    after a locking read sees what committed while it waited for the lock. If the
    connection's transaction has not begun (`transaction`), its BEGIN goes in this flight.
    Pass statements built once (module constants): each is compiled once and kept.
    """
    driver = _pipelined(conn)
    if driver is None:
        return [
            list(conn.execute(cast(Executable, statement), params)) for statement, params in reads
        ]
    compiled = [(_compiled_read(statement, conn.dialect), params) for statement, params in reads]
    cursors = []
    with _driver_errors(conn, "pipelined reads"):
        # Leaving the pipeline syncs once and hands every cursor its rows; reading rows
        # inside it would sync (one round trip) per cursor.
        with driver.pipeline():
            if conn.info.pop(_BEGIN_PENDING, False):
                _send_begin(driver)
            for read, params in compiled:
                cursor = driver.cursor()
                cursor.execute(read.sql, read.parameters(params))
                cursors.append(cursor)
        fetched = [cursor.fetchall() for cursor in cursors]
    return [read.rows(rows) for (read, _), rows in zip(compiled, fetched, strict=True)]


def write_and_commit(conn: Connection, writes: Sequence[Write]) -> None:
    """Run `writes` in order, then commit; on PostgreSQL all of it in one round trip.

    psycopg's own commit() inside a pipeline syncs, and leaving the pipeline syncs again:
    two round trips. So COMMIT is sent as one more statement of the flight; afterwards the
    server is out of the transaction and SQLAlchemy's commit() finds nothing to do.
    """
    driver = _pipelined(conn)
    if driver is None:
        for statement, params in writes:
            conn.execute(statement, params)
        conn.commit()
        return
    begin = conn.info.pop(_BEGIN_PENDING, False)
    if begin and not writes:
        return  # nothing was read or written: there is no transaction to end
    with _driver_errors(conn, "pipelined writes and COMMIT"), driver.pipeline():
        if begin:
            _send_begin(driver)
        for statement, params in writes:
            _execute_write(conn, driver, statement, params)
        driver.execute("COMMIT")
    conn.commit()


def _send(conn: Connection, driver: Any, sql: str, values: Any, *, many: bool) -> None:
    """Execute on the driver; SQLAlchemy's cursor-event listeners (instrumentation, the
    race tests) still see the statement, as through conn.execute (no execution context)."""
    cursor = driver.cursor()
    compat_sqlalchemy.before_cursor_execute(conn, cursor, sql, values, many)
    if many:
        cursor.executemany(sql, values)
    else:
        cursor.execute(sql, values)
    compat_sqlalchemy.after_cursor_execute(conn, cursor, sql, values, many)


def _execute_write(conn: Connection, driver: Any, statement: Executable, params: Any) -> None:
    """One write of a flight, sent straight to the driver when it safely can be.

    SQLAlchemy's execute adds an execution context, a cursor wrapper and result setup per
    statement on top of the driver's own work. The statement is compiled by SQLAlchemy once
    and its parameters go through SQLAlchemy's bind processors, so the driver sees what
    SQLAlchemy would send.
    """
    many = isinstance(params, list)
    first = params[0] if many else params
    compiled = _compiled_write(statement, conn.dialect, tuple(first))
    if compiled is None:
        if isinstance(statement, Insert):
            # A flight's results arrive only when it ends, so nothing may wait for rows:
            # a one-row INSERT would otherwise use RETURNING for its new primary key.
            statement = statement.inline()
        conn.execute(statement, params)
        return
    values: Any = [compiled.parameters(p) for p in params] if many else compiled.parameters(params)
    _send(conn, driver, compiled.sql, values, many=many)


@contextmanager
def _driver_errors(conn: Connection, what: str) -> Iterator[None]:
    """Wrap the driver's own errors (raised when a pipeline syncs) as SQLAlchemy does.

    IntegrityError for a unique key or CHECK, OperationalError for a deadlock, so callers
    retry and refuse on one kind of exception whichever way the statement was sent.
    """
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise DBAPIError.instance(what, None, exc, dbapi.Error, dialect=conn.dialect) from exc
