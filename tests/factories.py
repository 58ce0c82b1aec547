"""Small builders for test data, through the domain's own functions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from orders.services.addresses import add_address
from orders.services.catalog import (
    SlotSpec,
    add_product,
    create_device_model,
    create_shopper,
    create_store,
)
from orders.services.devices import LinkRules, link_device, register_device
from orders.store.db import Database
from orders.store.model import Base, OrderEvent, Shopper

# A delivery address every factory shopper has as their default, so that tests written
# before addresses keep their meaning; tests of a shopper without one make their own.
HOME = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "postcode": "SW1Y 4JH",
    "city": "London",
    "country": "GB",
}


def shopper_with_address(
    session: Session, *, name: str, email: str | None = None, monthly_cap_minor: int | None = None
) -> Shopper:
    """A new shopper whose default delivery address is HOME."""
    shopper = create_shopper(session, name=name, email=email, monthly_cap_minor=monthly_cap_minor)
    add_address(session, shopper.id, HOME)
    return shopper


@dataclass(frozen=True)
class World:
    """A store with products, a shopper, and a button linked to the shopper."""

    store_id: int
    shopper_id: int
    device_id: int
    link_id: int
    model_client_id: str
    appliance_client_id: str


def build_world(
    db: Database,
    *,
    stock: int = 100,
    price_minor: int = 500,
    rules: LinkRules | None = None,
    cancel_window_minutes: int = 30,
    slug: str = "shop",
) -> World:
    """A fresh store, catalog, shopper and linked button."""
    with db.write() as session:
        store = create_store(
            session,
            slug=slug,
            name=f"Store {slug}",
            currency="EUR",
            cancel_window_minutes=cancel_window_minutes,
        )
        add_product(session, store, sku="PODS", name="Coffee pods", price_minor=price_minor,
                    stock=stock, aliases=["coffee"])  # fmt: skip
        add_product(session, store, sku="AA", name="AA batteries", price_minor=300, stock=stock)
        model = create_device_model(session, store, name="Button", kind="button", skus=["PODS"])
        appliance = create_device_model(
            session, store, name="Coffee machine", kind="appliance",
            slots=[SlotSpec("pods", "count", 50, "PODS", 50)],
        )  # fmt: skip
        shopper = shopper_with_address(session, name="Ada", email=f"ada@{slug}.test")
        device = register_device(session, model, "SN-1")
        link = link_device(session, device, shopper, rules or LinkRules(product_sku="PODS"))
        return World(store.id, shopper.id, device.id, link.id, model.client_id, appliance.client_id)


def snapshot(session: Session) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, for 'the database is exactly as before' checks."""
    result: dict[str, list[tuple[object, ...]]] = {}
    for table in Base.metadata.sorted_tables:
        rows = session.execute(select(table)).all()
        result[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return result


def db_snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """snapshot() in its own read session."""
    with db.read() as session:
        return snapshot(session)


def count(db: Database, model: type[Base]) -> int:
    """How many rows `model` has."""
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def past_orders_analyzed(db: Database, world: World, n: int, *, of_the_device: bool) -> None:
    """`n` delivered orders of the world's shopper (PostgreSQL), then ANALYZE orders: a
    store with history, none of it open, and statistics that say so. `of_the_device`:
    placed by its button, else on the web."""
    device, link, channel = (
        (world.device_id, world.link_id, "button") if of_the_device else (None, None, "web")
    )
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (id, store_id, shopper_id, device_id, link_id, channel,"
                " status, total_minor, currency, created_at, updated_at, cancel_until)"
                " SELECT 'old' || g, :store, :shopper, :device, :link, :channel,"
                " 'delivered', 100, 'EUR', now(), now(), now()"
                " FROM generate_series(1, :n) AS g"
            ),
            {"store": world.store_id, "shopper": world.shopper_id, "device": device,
             "link": link, "channel": channel, "n": n},
        )  # fmt: skip
        conn.execute(text("ANALYZE orders"))


def publish_outbox(db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
    """Worker passes until every outbox row is published (webhooks fanned out, notices raised).

    On PostgreSQL one worker at a time holds the fan-out's advisory lock, database-wide:
    parallel test runs on the same server may hold it for a moment, so pass again.
    """
    from orders.services.webhook_dispatch import Dispatcher

    dispatcher = Dispatcher(db, clock=clock) if clock else Dispatcher(db)
    for _ in range(200):
        dispatcher.run_once()
        with db.read() as session:
            waiting = session.scalar(
                select(func.count())
                .select_from(OrderEvent)
                .where(OrderEvent.published_at.is_(None))
            )
        if not waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the outbox was never published")
