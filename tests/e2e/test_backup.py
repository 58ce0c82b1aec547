"""Backups: `pg_dump` of a store taking orders, `pg_restore` elsewhere, the app reads it there."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import selectinload

from orders.domain.decision import LineRequest
from orders.queries.snapshots import OrderView
from orders.services.ordering import OrderRequest, place_order
from orders.store.db import Database, make_engine
from orders.store.model import Order, OrderEvent, OrderLine, Product
from restock.migrate import upgrade
from tests.conftest import POSTGRES_URL, require_or_skip
from tests.factories import World, build_world
from tests.pg_schemas import postgres_schema, schema_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
STOCK = 100_000


@dataclass
class Store:
    """A migrated store in its own schema of the test database."""

    schema: str
    db: Database


def _libpq(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as a libpq connection URI (what pg_dump and pg_restore take)."""
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _database(url: str, schema: str) -> Database:
    return Database(make_engine(url, connect_args={"options": f"-csearch_path={schema}"}))


@pytest.fixture
def store() -> Iterator[Store]:
    """A migrated store in a fresh schema (PostgreSQL only: pg_dump is the backup tool)."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        require_or_skip("pg_dump and pg_restore are not installed (postgresql-client)")
    with postgres_schema() as schema:
        db = Database(make_engine(schema_url(schema)))
        try:
            upgrade(db.engine)
            yield Store(schema, db)
        finally:
            db.dispose()


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """An empty database on the same server to restore into; its name."""
    assert POSTGRES_URL is not None
    name = f"restock_restore_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _web_order(db: Database, world: World, key: str) -> str:
    request = OrderRequest(
        world.store_id, world.shopper_id, "web", (LineRequest("AA", 1),), idempotency_key=key
    )
    return place_order(db, request).order.id


def _views(db: Database) -> dict[str, OrderView]:
    with db.read() as session:
        orders = session.scalars(select(Order).options(selectinload(Order.lines)))
        return {order.id: OrderView.of(order) for order in orders}


def test_a_dump_of_a_store_taking_orders_restores_to_the_same_orders(
    store: Store, scratch_database: str, tmp_path: Path
) -> None:
    """pg_dump while orders are placed; the restore has whole orders, the same ones, and works."""
    assert POSTGRES_URL is not None
    world = build_world(store.db, stock=STOCK)
    before = {_web_order(store.db, world, f"before-{n}") for n in range(20)}
    stop, placed_during = threading.Event(), 0

    def keep_ordering() -> None:
        nonlocal placed_during
        while not stop.is_set() and placed_during < 500:
            _web_order(store.db, world, f"during-{placed_during}")
            placed_during += 1

    writer = threading.Thread(target=keep_ordering, name="orders-while-dumping")
    writer.start()
    dump = tmp_path / "restock.dump"
    try:
        dumped = subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--schema", store.schema,
             "--file", str(dump), _libpq(POSTGRES_URL)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        stop.set()
        writer.join(timeout=60)
    assert dumped.returncode == 0, dumped.stderr
    restored = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error",
         "--dbname", _libpq(POSTGRES_URL, scratch_database), str(dump)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr

    restored_url = make_url(POSTGRES_URL).set(database=scratch_database)
    copy = _database(restored_url.render_as_string(hide_password=False), store.schema)
    try:
        source, backup = _views(store.db), _views(copy)
        # Every order placed before the dump began is there, read back exactly as at the source.
        assert before <= backup.keys() <= source.keys()
        assert all(backup[order_id] == source[order_id] for order_id in backup)
        # A snapshot, never half a transaction: each order has its line, its event, its stock.
        with copy.read() as session:
            lines = set(session.scalars(select(OrderLine.order_id)))
            events = set(
                session.scalars(select(OrderEvent.order_id).where(OrderEvent.order_id.is_not(None)))
            )
            stock = session.scalar(select(Product.stock).where(Product.sku == "AA"))
        assert lines == events == set(backup)
        assert stock == STOCK - len(backup)
        # The restored store takes new orders: its sequences come back with its rows.
        fresh = _web_order(copy, world, "after-restore")
        assert fresh not in source and _views(copy)[fresh].status == "placed"
    finally:
        copy.dispose()
