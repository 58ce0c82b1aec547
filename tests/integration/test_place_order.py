"""Placing orders on real databases: idempotency, the in-progress guard, stock, caps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from orders.domain.errors import InvalidRequest, NotFound, OrderRefused
from orders.services.devices import LinkRules, active_link, unlink, update_link
from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.store.db import Database
from orders.store.model import Order, OrderEvent, Press, Product
from tests.factories import build_world, count, db_snapshot, shopper_with_address

THREADS = 32


def _request(
    world_store: int, shopper: int, key: str | None, sku: str = "PODS", qty: int = 1
) -> OrderRequest:
    return OrderRequest(world_store, shopper, "web", (LineRequest(sku, qty),), key)


def _stock(db: Database, sku: str = "PODS") -> int:
    with db.read() as session:
        return int(session.scalar(select(Product.stock).where(Product.sku == sku)) or 0)


def test_placing_captures_price_takes_stock_and_writes_an_event(db: Database) -> None:
    """A placed order has its lines priced, stock reduced and one outbox row."""
    world = build_world(db, stock=10, price_minor=450)
    result = place_order(db, _request(world.store_id, world.shopper_id, "k1", qty=3))
    assert result.outcome == "placed"
    assert result.order.status == "placed"
    assert result.order.total_minor == 1350
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in result.order.lines] == [
        ("PODS", 3, 450)
    ]
    assert _stock(db) == 7
    with db.read() as session:
        # Order events only: linking the world's button wrote a device.linked row too.
        events = session.scalars(select(OrderEvent).where(OrderEvent.order_id.is_not(None))).all()
    assert [(e.order_id, e.type, e.status) for e in events] == [
        (result.order.id, "order.created", "placed")
    ]


def test_same_idempotency_key_returns_the_same_order(db: Database) -> None:
    """A retry with the same key is a duplicate of the first order, not a second one."""
    world = build_world(db)
    first = place_order(db, _request(world.store_id, world.shopper_id, "same"))
    second = place_order(db, _request(world.store_id, world.shopper_id, "same"))
    assert second.outcome == "duplicate"
    assert second.order.id == first.order.id
    assert count(db, Order) == 1
    assert _stock(db) == 99


def test_concurrent_callers_with_one_key_make_exactly_one_order(db: Database) -> None:
    """32 threads placing with the same idempotency key → exactly one order."""
    world = build_world(db)
    request = _request(world.store_id, world.shopper_id, "race-key")
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: place_order(db, request), range(THREADS)))
    assert len({r.order.id for r in results}) == 1
    assert sorted(r.outcome for r in results).count("placed") == 1
    assert count(db, Order) == 1
    assert _stock(db) == 99


def test_racing_for_the_last_units_never_oversells(db: Database) -> None:
    """32 shoppers racing for the last 10 units → exactly 10 placed, the rest out_of_stock."""
    world = build_world(db, stock=10)
    with db.write() as session:
        shoppers = [shopper_with_address(session, name=f"s{i}").id for i in range(THREADS)]

    def buy(shopper_id: int) -> str:
        try:
            return place_order(db, _request(world.store_id, shopper_id, None)).outcome
        except OrderRefused as refused:
            return refused.reason

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(buy, shoppers))
    assert outcomes.count("placed") == 10
    assert outcomes.count("out_of_stock") == THREADS - 10
    assert _stock(db) == 0
    assert count(db, Order) == 10


def test_out_of_stock_is_refused_and_changes_nothing(db: Database) -> None:
    """Asking for more than is on hand is refused with `out_of_stock`."""
    world = build_world(db, stock=2)
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        place_order(db, _request(world.store_id, world.shopper_id, "k", qty=3))
    assert refused.value.reason == "out_of_stock"
    assert db_snapshot(db) == before


def test_multi_line_order_is_all_or_nothing(db: Database) -> None:
    """When the second line is short, the first line's stock is not taken either."""
    world = build_world(db, stock=5)
    before = db_snapshot(db)
    request = OrderRequest(
        world.store_id, world.shopper_id, "web", (LineRequest("PODS", 1), LineRequest("AA", 6))
    )
    with pytest.raises(OrderRefused):
        place_order(db, request)
    assert db_snapshot(db) == before


def test_unknown_sku_is_an_invalid_request(db: Database) -> None:
    """An SKU the store doesn't sell is a 4xx-style error, not a crash."""
    world = build_world(db)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest) as err:
        place_order(db, _request(world.store_id, world.shopper_id, None, sku="NOPE"))
    assert err.value.reason == "unknown_sku"
    assert db_snapshot(db) == before


def test_another_shoppers_key_is_not_reused(db: Database) -> None:
    """An idempotency key never hands one shopper another shopper's order."""
    world = build_world(db)
    place_order(db, _request(world.store_id, world.shopper_id, "shared"))
    with db.write() as session:
        other = shopper_with_address(session, name="Bob").id
    with pytest.raises(InvalidRequest):
        place_order(db, _request(world.store_id, other, "shared"))


def test_press_places_one_order_and_the_same_seq_is_a_duplicate(db: Database) -> None:
    """The same seq again answers `duplicate` with the first order."""
    world = build_world(db)
    first = press(db, world.device_id, 1)
    again = press(db, world.device_id, 1)
    assert first.outcome == "placed"
    assert again.outcome == "duplicate"
    assert again.order.id == first.order.id
    assert count(db, Order) == 1


def test_second_press_while_order_open_is_in_progress(db: Database) -> None:
    """A new press while the device's order is open answers `in_progress`, no new order."""
    world = build_world(db)
    first = press(db, world.device_id, 1)
    second = press(db, world.device_id, 2)
    assert second.outcome == "in_progress"
    assert second.order.id == first.order.id
    assert count(db, Order) == 1
    assert press(db, world.device_id, 2).outcome == "duplicate"


def test_concurrent_presses_with_different_seqs_make_one_order(db: Database) -> None:
    """32 different presses at once → one order, the rest `in_progress`."""
    world = build_world(db)
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda seq: press(db, world.device_id, seq), range(THREADS)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count("placed") == 1
    assert outcomes.count("in_progress") == THREADS - 1
    assert count(db, Order) == 1
    assert count(db, Press) == THREADS


def test_new_boot_restarting_at_seq_one_is_a_new_press(db: Database) -> None:
    """After a battery change the device starts at seq 1 under a new boot id."""
    from orders.services.lifecycle import Actor, mark_delivered, mark_shipped

    world = build_world(db)
    first = press(db, world.device_id, 1, boot="a")
    mark_shipped(db, first.order.id, world.store_id)
    mark_delivered(db, first.order.id, world.store_id)
    again = press(db, world.device_id, 1, boot="b")
    assert again.outcome == "placed"
    assert again.order.id != first.order.id
    assert press(db, world.device_id, 1, boot="a").order.id == first.order.id
    assert Actor.merchant(world.store_id).role == "merchant"


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (LinkRules(product_sku="PODS", paused=True), "paused"),
        (LinkRules(product_sku="PODS", per_order_cap_minor=499), "spending_cap"),
    ],
)
def test_refused_press_changes_nothing(db: Database, rules: LinkRules, reason: str) -> None:
    """Paused links and caps refuse with the contract's reason word; no row changes."""
    world = build_world(db, rules=rules, price_minor=500)
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        press(db, world.device_id, 1)
    assert refused.value.reason == reason
    assert db_snapshot(db) == before


def test_unlinked_device_press_is_refused(db: Database) -> None:
    """After unlinking, a press is refused as `unlinked` and nothing changes."""
    world = build_world(db)
    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        unlink(session, link)
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        press(db, world.device_id, 1)
    assert refused.value.reason == "unlinked"
    assert db_snapshot(db) == before


def test_device_monthly_cap_counts_this_months_orders_only(db: Database) -> None:
    """The monthly cap sums the calendar month's non-cancelled orders of the device."""
    from orders.services.lifecycle import mark_delivered, mark_shipped

    world = build_world(db, rules=LinkRules(product_sku="PODS", monthly_cap_minor=1000))
    march = datetime(2026, 3, 30, tzinfo=UTC)
    for seq, day in ((1, march), (2, march + timedelta(hours=1))):
        result = press(db, world.device_id, seq, now=day)
        if result.outcome == "placed":
            mark_shipped(db, result.order.id, world.store_id)
            mark_delivered(db, result.order.id, world.store_id)
    with pytest.raises(OrderRefused) as refused:
        press(db, world.device_id, 3, now=march + timedelta(hours=2))
    assert refused.value.reason == "spending_cap"
    assert press(db, world.device_id, 4, now=datetime(2026, 4, 1, tzinfo=UTC)).outcome == "placed"


def test_shopper_monthly_cap_covers_every_channel(db: Database) -> None:
    """A shopper's monthly cap counts web and device orders together."""
    world = build_world(db)
    with db.write() as session:
        from orders.store.model import Shopper

        shopper = session.get(Shopper, world.shopper_id)
        assert shopper is not None
        shopper.monthly_cap_minor = 900
    # Another product: an open web order of the press's own would answer in_progress first.
    place_order(db, _request(world.store_id, world.shopper_id, "web-1", sku="AA", qty=2))
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        press(db, world.device_id, 1)
    assert refused.value.reason == "spending_cap"
    assert db_snapshot(db) == before


def test_approval_mode_places_pending_approval(db: Database) -> None:
    """With approval mode on, a press makes a `pending_approval` order (`needs_approval`)."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    result = press(db, world.device_id, 1)
    assert result.outcome == "needs_approval"
    assert result.order.status == "pending_approval"
    assert press(db, world.device_id, 2).outcome == "in_progress"


def test_rules_can_change_after_linking(db: Database) -> None:
    """Pausing an active link stops presses; resuming allows them again."""
    world = build_world(db)
    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        update_link(session, link, LinkRules(paused=True))
    with pytest.raises(OrderRefused):
        press(db, world.device_id, 1)
    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        update_link(session, link, LinkRules(paused=False))
    assert press(db, world.device_id, 1).outcome == "placed"


def test_unknown_shopper_is_not_found(db: Database) -> None:
    """Placing for a shopper that doesn't exist is NotFound and changes nothing."""
    world = build_world(db)
    before = db_snapshot(db)
    with pytest.raises(NotFound):
        place_order(db, _request(world.store_id, world.shopper_id + 999, None))
    assert db_snapshot(db) == before
