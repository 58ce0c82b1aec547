"""Engines and units of work. SQLite (WAL) by default, PostgreSQL (psycopg 3) at scale."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from orders.store import flights
from orders.store.flights import Write

T = TypeVar("T")

# Execution option that marks a connection as a writer; SQLite then opens its
# transaction with BEGIN IMMEDIATE so concurrent writers queue on busy_timeout
# instead of deadlocking on a lock upgrade (SQLITE_BUSY mid-transaction).
_WRITE = "restock_write"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Restock stores UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, UTC and timezone-aware."""
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url` with Restock's per-backend settings."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    # No pre-ping (a round trip per checkout): a dropped connection fails on first use, the
    # pool is invalidated, and run_write and lookup retry when nothing can have committed.
    kwargs.setdefault("pool_recycle", 3600)
    # Last in, first out: the press writer gets back the connection it just returned, whose
    # statements are prepared and planned; idle connections age out instead of rotating.
    kwargs.setdefault("pool_use_lifo", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.driver == "psycopg":
        _configure_psycopg(engine)
    return engine


def _configure_psycopg(engine: Engine) -> None:
    from orders.store.compat_psycopg import send_lists_in_binary

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The `= ANY(:ids)` and unnest parameters of orders/store/flights.py are lists.
        send_lists_in_binary(dbapi_connection)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_WRITE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Database:
    """Units of work over one engine: `write()` for use cases that change rows, `read()` else."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self._writer = sessionmaker(bind=self._write_engine, expire_on_commit=False)
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        # PostgreSQL: lookups run each statement in autocommit, one round trip instead of
        # three (BEGIN, the query, ROLLBACK). SQLite reads in a deferred transaction anyway.
        self._lookups = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else engine
        )

    @property
    def dialect(self) -> str:
        """The backend's name: `sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits on success and rolls back on any error."""
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing it does is committed."""
        # Closing (not rolling back) detaches loaded rows without expiring them, and
        # the pool's reset-on-return still discards anything the session did.
        with self._reader() as session:
            yield session

    def lookup(self, work: Callable[[Connection], T]) -> T:
        """Run independent reads that need no common snapshot (one statement each, ideally).

        Reads are safe to repeat, so a connection the server dropped is retried once.
        """
        for attempt in range(2):
            try:
                with self._lookups.connect() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if attempt == 1 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def run_write(self, work: Callable[[Session], T], *, attempts: int = 5, races: int = 0) -> T:
        """Run `work` in a write transaction, retrying on transient lock conflicts.

        A dropped connection is retried too, but only when it failed before the commit was
        sent: a commit whose answer was lost may have happened, so it is never repeated.
        `races`: how many times to run `work` again when another transaction won a race on
        a unique key (IntegrityError); the next run sees the winner's committed row.
        """

        def once(sent: list[bool]) -> T:
            with self._writer() as session, session.begin():
                result = work(session)
                sent.append(True)  # the commit follows, on leaving the block
            return result

        return self._retrying(once, attempts=attempts, races=races)

    def run_decided(
        self, decide: Callable[[Connection], tuple[T, Sequence[Write]]], *, attempts: int = 5
    ) -> T:
        """A write transaction in two halves: `decide` reads and decides on a Core connection
        and returns its result and its writes; the writes and the COMMIT then go to the server
        in one flight. With one `flights.read_rows` flight for the reads, a batch costs two
        round trips on PostgreSQL whatever its size (see orders/store/flights.py).

        For hot group-committed work (presses). Retried like run_write, except that an
        IntegrityError (a lost race on a unique key or a CHECK) goes to the caller, who
        settles the race.
        """

        def once(sent: list[bool]) -> T:
            with flights.transaction(self._write_engine) as conn:
                result, writes = decide(conn)
                sent.append(True)
                flights.write_and_commit(conn, writes)
            return result

        return self._retrying(once, attempts=attempts, races=0)

    def _retrying(self, once: Callable[[list[bool]], T], *, attempts: int, races: int) -> T:
        """Run `once` until it succeeds: lock conflicts back off and run again; a dropped
        connection runs again only if `once` had not yet marked the commit as sent."""
        lost_races = 0
        attempt = 0
        while True:
            sent: list[bool] = []
            try:
                return once(sent)
            except IntegrityError:
                lost_races += 1
                if lost_races > races:
                    raise
            except DBAPIError as exc:
                retry = _is_transient(exc) or (exc.connection_invalidated and not sent)
                attempt += 1
                if attempt == attempts or not retry:
                    raise
                time.sleep(0.01 * (2 ** (attempt - 1)))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _is_transient(exc: DBAPIError) -> bool:
    """Lock conflicts: PostgreSQL's serialization_failure / deadlock_detected, SQLite's busy."""
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.orig, "sqlstate", None)
    return code in {"40001", "40P01"} or "database is locked" in str(exc.orig)
