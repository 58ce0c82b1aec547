"""A PostgreSQL connection the server drops (a restart, an idle timeout) costs no request.

The pool does not pre-ping (a round trip per checkout); instead lookups retry once, and
write transactions retry only when nothing can have been committed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from orders.services.catalog import create_store
from orders.store.db import Database, make_engine
from orders.store.model import Store
from tests.conftest import Backend

pytestmark = pytest.mark.postgres


@pytest.fixture
def small_db(postgresql_backend: Backend) -> Iterator[Database]:
    """A Database whose pool holds one connection, so a dropped one is the one reused."""
    options = {"options": f"-csearch_path={postgresql_backend.schema}"}
    engine = make_engine(postgresql_backend.url, connect_args=options, pool_size=1, max_overflow=0)
    try:
        yield Database(engine)
    finally:
        engine.dispose()
        postgresql_backend.clean()


def _backend_pid(db: Database) -> int:
    return int(db.lookup(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))


def _terminate(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def _stores(db: Database) -> int:
    return int(db.lookup(lambda conn: conn.execute(select(func.count(Store.id))).scalar_one()))


def test_a_lookup_survives_a_dropped_connection(
    small_db: Database, postgresql_backend: Backend
) -> None:
    before = _backend_pid(small_db)
    _terminate(postgresql_backend.url, before)

    def read(conn: Connection) -> int:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    after = small_db.lookup(read)
    assert after != before  # answered, on a new connection


def test_a_write_survives_a_connection_dropped_before_it_began(
    small_db: Database, postgresql_backend: Backend
) -> None:
    _terminate(postgresql_backend.url, _backend_pid(small_db))
    calls = []

    def work(session: Session) -> int:
        calls.append(1)
        return create_store(session, slug="after-drop", name="After", currency="EUR").id

    store_id = small_db.run_write(work)
    assert len(calls) == 2  # the first try met the dead connection, the second wrote
    assert _stores(small_db) == 1
    with small_db.read() as session:
        assert session.get(Store, store_id) is not None


def test_a_commit_whose_connection_died_is_not_repeated(
    small_db: Database, postgresql_backend: Backend
) -> None:
    calls = []

    def work(session: Session) -> None:
        calls.append(1)
        create_store(session, slug="maybe", name="Maybe", currency="EUR")
        session.flush()
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The server drops this connection now; the commit that follows cannot be answered.
        _terminate(postgresql_backend.url, int(pid))

    with pytest.raises(DBAPIError) as raised:
        small_db.run_write(work)
    assert raised.value.connection_invalidated
    assert len(calls) == 1  # never run twice: a lost commit may have happened
    assert _stores(small_db) == 0  # here it did not: the server rolled it back
