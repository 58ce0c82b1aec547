"""Upgrading a store with data in it: seed at the previous release's head, upgrade to heads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from orders.services.presses import press
from orders.store.db import Database, make_engine
from orders.store.model import Base, Order, OrderEvent, OrderLine, Press
from restock.migrate import MIGRATIONS, alembic_config, upgrade
from tests.pg_schemas import postgres_schema, schema_url

# The head of the last release: data written by it must survive every migration since.
PREVIOUS_RELEASE = "0003"
PROBE = Path(__file__).resolve().parent / "upgrade_probe"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database with no tables at all (a new SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'upgrade.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_schema() as schema:
        engine = make_engine(schema_url(schema))
        try:
            yield engine
        finally:
            engine.dispose()


def _at(conn: Connection, minutes: float) -> Any:
    """A timestamp T0 + `minutes` as the previous release stored it (SQLite: naive UTC text)."""
    when = T0 + timedelta(minutes=minutes)
    if conn.dialect.name == "sqlite":
        return when.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return when


def _insert(conn: Connection, table: str, **row: Any) -> None:
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)


def _seed_previous_release(conn: Connection) -> None:
    """A store as the previous release left it: SQL against the 0003 schema, not today's ORM."""
    at = lambda minutes: _at(conn, minutes)  # noqa: E731
    _insert(conn, "stores", id=1, slug="corner", name="Corner Shop", currency="EUR",
            cancel_window_minutes=30, lead_time_days=2.0, created_at=at(0))  # fmt: skip
    for sid, name, email in ((1, "Ada", "ada@corner.test"), (2, "Grace", "grace@corner.test")):
        _insert(conn, "shoppers", id=sid, name=name, email=email, monthly_cap_minor=50_000,
                voice_pin_hash=None, voice_pin_threshold_minor=None, voice_pin_failures=0,
                voice_locked_until=None, created_at=at(1), deleted_at=None)  # fmt: skip
        _insert(conn, "accounts", id=sid, email=email, password_hash="argon2-hash-" + name,
                shopper_id=sid, disabled=False, created_at=at(1))  # fmt: skip
    _insert(conn, "accounts", id=3, email="owner@corner.test", password_hash="argon2-hash-owner",
            shopper_id=None, disabled=False, created_at=at(0))  # fmt: skip
    _insert(conn, "store_memberships", account_id=3, store_id=1, role="owner")
    for pid, sku, name, price, stock in ((1, "PODS", "Coffee pods", 1599, 40),
                                         (2, "AA", "AA batteries", 899, 12)):  # fmt: skip
        _insert(conn, "products", id=pid, store_id=1, sku=sku, name=name,
                aliases=json.dumps([name.lower()]), price_minor=price, currency="EUR",
                stock=stock, pack_size=1, active=True, created_at=at(0))  # fmt: skip
    _insert(conn, "device_models", id=1, store_id=1, name="Button", kind="button",
            client_id="button-model", test_mode=False, created_at=at(0))  # fmt: skip
    _insert(conn, "device_model_products", model_id=1, product_id=1)
    _insert(conn, "oauth_clients", id=1, client_id="button-model", client_secret_hash=None,
            name="Button", kind="device_model", store_id=1, redirect_uris=json.dumps([]),
            grant_types=json.dumps(["urn:ietf:params:oauth:grant-type:device_code"]),
            scope="device:order device:telemetry", token_endpoint_auth_method="none",
            created_at=at(0))  # fmt: skip
    _insert(conn, "devices", id=1, store_id=1, model_id=1, serial="BTN-0001", name="Kitchen",
            created_at=at(2), last_seen_at=at(300))  # fmt: skip
    # The button was Ada's, then Grace's: one link unlinked, one active.
    for lid, shopper, status, unlinked in ((1, 1, "unlinked", at(100)), (2, 2, "active", None)):
        _insert(conn, "device_links", id=lid, device_id=1, shopper_id=shopper, store_id=1,
                product_id=1, quantity=1, approval_required=False, per_order_cap_minor=None,
                monthly_cap_minor=None, paused=False, policy="threshold", reorder_point=None,
                risk=0.05, cover_days=14.0, status=status, created_at=at(2 + 100 * (lid - 1)),
                unlinked_at=unlinked)  # fmt: skip
    _insert(conn, "oauth_tokens", id=1, access_token_hash="a" * 64, refresh_token_hash="b" * 64,
            client_id="button-model", kind="device", scope="device:order", account_id=2,
            shopper_id=2, store_id=1, device_id=1, link_id=2, family="f" * 32,
            issued_at=at(110), expires_at=at(170), refresh_expires_at=at(90_000),
            refresh_used_at=None, revoked_at=None)  # fmt: skip
    # Ada's order, delivered; Grace's, placed and still open; a voice order without a device.
    orders = (
        ("ord-ada-delivered", 1, 1, 1, "button", "delivered", 10),
        ("ord-grace-placed", 2, 1, 2, "button", "placed", 200),
        ("ord-grace-voice", 2, None, None, "voice", "placed", 250),
    )
    for oid, shopper, device, link, channel, status, minute in orders:
        _insert(conn, "orders", id=oid, store_id=1, shopper_id=shopper, device_id=device,
                link_id=link, device_product_id=1 if device else None, channel=channel,
                status=status, idempotency_key=f"idem-{oid}", total_minor=1599, currency="EUR",
                created_at=at(minute), updated_at=at(minute + 1), cancel_until=at(minute + 30),
                shipped_at=at(minute + 60) if status == "delivered" else None,
                delivered_at=at(minute + 90) if status == "delivered" else None,
                cancelled_at=None, cancelled_by=None, tracking_ref=None)  # fmt: skip
        _insert(conn, "order_lines", order_id=oid, product_id=1, sku="PODS", name="Coffee pods",
                quantity=1, unit_price_minor=1599, line_total_minor=1599)  # fmt: skip
        _insert(conn, "order_events", order_id=oid, store_id=1, type="order.placed",
                status="placed", data=json.dumps({"total_minor": 1599}),
                created_at=at(minute), published_at=at(minute))  # fmt: skip
    # Presses: each link's ordering press, and Grace's retransmission-era counter past 2**31.
    for boot, seq, result, order in (
        ("boot-ada", 1, "placed", "ord-ada-delivered"),
        ("boot-grace", 1, "placed", "ord-grace-placed"),
        ("boot-grace", 2**33, "in_progress", "ord-grace-placed"),
    ):
        _insert(conn, "presses", device_id=1, boot=boot, seq=seq, result=result, order_id=order,
                created_at=at(200))  # fmt: skip
    _insert(conn, "supply_readings", device_id=1, slot="button", value=1.0, unit="count",
            measured_at=at(199), received_at=at(200))  # fmt: skip


def _counts(conn: Connection) -> dict[str, int]:
    tables = inspect(conn).get_table_names()
    return {
        table: int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
        for table in tables
        if table != "alembic_version"
    }


def _upgraded_store(engine: Engine) -> dict[str, int]:
    """Seed at the previous release's head, upgrade to heads; returns the rows seeded."""
    upgrade(engine, PREVIOUS_RELEASE)
    with engine.begin() as conn:
        _seed_previous_release(conn)
        seeded = _counts(conn)
    upgrade(engine)
    return seeded


def test_an_upgrade_from_the_previous_release_keeps_every_row(empty_engine: Engine) -> None:
    """Every row the previous release wrote is still there after upgrading to heads."""
    seeded = _upgraded_store(empty_engine)
    with empty_engine.connect() as conn:
        after = _counts(conn)
        heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert {table: after[table] for table in seeded} == seeded
    assert PREVIOUS_RELEASE not in heads
    # New tables start empty; the previous release's rows are all accounted for above.
    assert sum(seeded.values()) == 29


def test_an_upgraded_store_reads_its_orders_through_todays_model(empty_engine: Engine) -> None:
    """Today's ORM loads the old orders, lines, events and presses with their values intact."""
    _upgraded_store(empty_engine)
    db = Database(empty_engine)
    with db.read() as session:
        for mapper in Base.registry.mappers:
            session.scalars(select(mapper.class_)).all()  # every column exists at heads
        delivered = session.get(Order, "ord-ada-delivered")
        assert delivered is not None and delivered.status == "delivered"
        assert delivered.delivered_at == T0 + timedelta(minutes=100)
        assert delivered.total_minor == 1599 and delivered.link_id == 1
        lines = session.scalars(select(OrderLine).where(OrderLine.order_id == "ord-grace-placed"))
        assert [(line.sku, line.quantity) for line in lines] == [("PODS", 1)]
        events = session.scalars(select(OrderEvent).order_by(OrderEvent.id)).all()
        assert [event.data for event in events] == [{"total_minor": 1599}] * 3
        presses = session.execute(
            select(Press.boot, Press.seq, Press.link_id).order_by(Press.boot, Press.seq)
        ).all()
    # Presses now name their link, taken from the order each one answered with.
    assert presses == [("boot-ada", 1, 1), ("boot-grace", 1, 2), ("boot-grace", 2**33, 2)]


def test_an_upgrade_records_each_links_product_and_todays_price_as_agreed(
    empty_engine: Engine,
) -> None:
    """The price guard starts from what links order now: product and today's price, for
    every link that names a product; nothing is a test order or a held one."""
    _upgraded_store(empty_engine)
    with empty_engine.connect() as conn:
        links = conn.execute(
            text(
                "SELECT id, consented_product_id, consented_price_minor, price_tolerance_minor "
                "FROM device_links ORDER BY id"
            )
        ).all()
        marked = conn.execute(
            text("SELECT COUNT(*) FROM orders WHERE test OR hold_reason IS NOT NULL")
        ).scalar_one()
    assert [tuple(row) for row in links] == [(1, 1, 1599, 0), (2, 1, 1599, 0)]
    assert marked == 0


def test_an_upgraded_store_takes_presses_and_keeps_its_constraints(empty_engine: Engine) -> None:
    """After the upgrade a press is answered from the old rows, and the database's rules hold."""
    _upgraded_store(empty_engine)
    db = Database(empty_engine)
    # Grace's button pressed again: her placed order is still open, so nothing new is placed.
    again = press(db, 1, 7, boot="boot-grace", now=T0 + timedelta(minutes=400))
    assert (again.outcome, again.order.id) == ("in_progress", "ord-grace-placed")
    # A retransmission of a press the previous release recorded gets the same order back.
    replay = press(db, 1, 1, boot="boot-grace", now=T0 + timedelta(minutes=400))
    assert replay.order.id == "ord-grace-placed"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 3
    refused = (
        "UPDATE products SET stock = -1 WHERE id = 1",
        "UPDATE device_links SET status = 'active' WHERE id = 1",  # one active link a device
        "UPDATE orders SET total_minor = -5 WHERE id = 'ord-grace-voice'",
        "INSERT INTO presses (device_id, link_id, boot, seq, result, order_id, created_at) "
        "SELECT device_id, link_id, boot, seq, result, order_id, created_at FROM presses "
        "WHERE boot = 'boot-grace' AND seq = 1",
    )
    for statement in refused:
        with pytest.raises(IntegrityError), empty_engine.begin() as conn:
            conn.execute(text(statement))
    with db.read() as session:
        assert session.get(Order, "ord-grace-voice").total_minor == 1599  # type: ignore[union-attr]


def test_a_migration_that_rebuilds_a_referenced_table_keeps_the_rows_that_refer_to_it(
    empty_engine: Engine,
) -> None:
    """Rebuilding `orders` (SQLite copies and drops it) keeps its lines, events and presses."""
    seeded = _upgraded_store(empty_engine)
    config = alembic_config(empty_engine)
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join([str(MIGRATIONS / "versions"), str(PROBE)])
    )
    command.upgrade(config, "heads")
    with empty_engine.connect() as conn:
        after = _counts(conn)
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            "probe_rebuild_orders"
        ]
    assert {table: after[table] for table in seeded} == seeded
    db = Database(empty_engine)
    # Foreign keys are enforced again once the migration is done.
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(text("DELETE FROM orders WHERE id = 'ord-grace-placed'"))
