"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from orders.store.db import Database
from orders.store.model import Store
from restock.models import Base
from tests.conftest import Backend


def test_migrations_match_the_models(backend: Backend) -> None:
    """Alembic finds nothing to autogenerate after `upgrade heads`."""
    with backend.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_times_come_back_timezone_aware_utc(db: Database) -> None:
    """A time stored in any zone is read back as the same instant in UTC."""
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.write() as session:
        store = Store(slug="tz", name="tz", currency="EUR", created_at=moment)
        session.add(store)
        session.flush()
        store_id = store.id
    with db.read() as session:
        loaded = session.get(Store, store_id)
        assert loaded is not None
        assert loaded.created_at == moment
        assert loaded.created_at.tzinfo == UTC
