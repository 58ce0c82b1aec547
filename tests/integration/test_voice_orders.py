"""The voice rules in orders/: PIN lockout, one order per confirmed dialog, supplies, history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from orders.domain.errors import InvalidRequest
from orders.queries.history import find_reorder, latest_cancellable, open_orders
from orders.queries.search import find_product
from orders.queries.supplies import supply_level
from orders.services.confirmation import confirm_voice_purchase
from orders.services.consent import check_voice_pin, set_voice_pin
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from orders.store.model import Order, Product, Shopper, SupplyReading
from tests.factories import count, db_snapshot
from tests.voice_fixtures import VoiceWorld, build_voice_world

PODS = (LineRequest("COF-PODS-50", 2),)


def _shopper(db: Database, shopper_id: int) -> Shopper:
    with db.read() as session:
        shopper = session.get(Shopper, shopper_id)
        assert shopper is not None
        return shopper


def test_a_voice_pin_is_stored_as_an_argon2_hash(db: Database) -> None:
    """The PIN itself is never stored."""
    world = build_voice_world(db, pin="4821")
    stored = _shopper(db, world.shopper_id).voice_pin_hash
    assert stored is not None and stored.startswith("$argon2") and "4821" not in stored


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", " 1234", "١٢٣٤"])
def test_a_pin_that_is_not_four_ascii_digits_is_refused_and_changes_nothing(
    db: Database, pin: str
) -> None:
    """Only four digits 0-9 (what AMAZON.FOUR_DIGIT_NUMBER gives) can be a PIN."""
    world = build_voice_world(db)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest):
        set_voice_pin(db, world.shopper_id, pin)
    assert db_snapshot(db) == before


def test_three_misses_lock_for_an_hour_and_even_the_right_pin_waits(db: Database) -> None:
    """Misses count down; the third locks; the right PIN is refused until the hour is over."""
    world = build_voice_world(db, pin="4821")
    now = utcnow()
    assert check_voice_pin(db, world.shopper_id, "0000", now=now).attempts_left == 2
    assert check_voice_pin(db, world.shopper_id, "0001", now=now).attempts_left == 1
    locked = check_voice_pin(db, world.shopper_id, "0002", now=now)
    assert locked.result == "locked" and locked.locked_until == now + timedelta(hours=1)
    later = now + timedelta(minutes=59)
    assert check_voice_pin(db, world.shopper_id, "4821", now=later).result == "locked"
    after = now + timedelta(hours=1, seconds=1)
    assert check_voice_pin(db, world.shopper_id, "4821", now=after).result == "ok"
    assert _shopper(db, world.shopper_id).voice_locked_until is None


def test_a_right_pin_resets_the_count_of_misses(db: Database) -> None:
    """Two misses, a hit, then two more misses: still not locked."""
    world = build_voice_world(db, pin="4821")
    for pin in ("0000", "0001", "4821", "0002", "0003"):
        result = check_voice_pin(db, world.shopper_id, pin)
    assert result.result == "wrong" and result.attempts_left == 1


def test_a_malformed_spoken_pin_counts_as_a_miss(db: Database) -> None:
    """Garbage is a wrong PIN, not a free try."""
    world = build_voice_world(db, pin="4821")
    assert check_voice_pin(db, world.shopper_id, "?").result == "wrong"
    assert _shopper(db, world.shopper_id).voice_pin_failures == 1


def test_one_confirmed_dialog_makes_one_order_however_often_it_is_confirmed(db: Database) -> None:
    """The dialog id is the idempotency key: the second confirmation finds the first order."""
    world = build_voice_world(db)
    first = confirm_voice_purchase(
        db, world.shopper_id, world.store_id, PODS, "dlg-1", quoted_total_minor=3198
    )
    second = confirm_voice_purchase(
        db, world.shopper_id, world.store_id, PODS, "dlg-1", quoted_total_minor=3198
    )
    assert first.outcome == "placed" and second.outcome == "duplicate"
    assert first.order is not None and second.order is not None
    assert first.order.id == second.order.id and first.order.channel == "voice"
    assert count(db, Order) == 1


def test_a_retried_confirmation_of_the_last_units_is_still_the_same_order(db: Database) -> None:
    """The key is looked up before stock is checked, so the retry doesn't say out of stock."""
    world = build_voice_world(db)
    with db.write() as session:
        session.execute(update(Product).where(Product.sku == "COF-PODS-50").values(stock=2))
    for outcome in ("placed", "duplicate"):
        result = confirm_voice_purchase(
            db, world.shopper_id, world.store_id, PODS, "dlg-last", quoted_total_minor=3198
        )
        assert result.outcome == outcome


def test_with_a_pin_set_nothing_is_ordered_until_it_is_verified(db: Database) -> None:
    """needs_pin places nothing; pin_verified places the order."""
    world = build_voice_world(db, pin="4821")
    before = db_snapshot(db)
    waiting = confirm_voice_purchase(
        db, world.shopper_id, world.store_id, PODS, "dlg-1", quoted_total_minor=3198
    )
    assert waiting.outcome == "needs_pin" and db_snapshot(db) == before
    done = confirm_voice_purchase(
        db,
        world.shopper_id,
        world.store_id,
        PODS,
        "dlg-1",
        quoted_total_minor=3198,
        pin_verified=True,
    )
    assert done.outcome == "placed"


def test_a_confirmation_at_another_price_orders_nothing(db: Database) -> None:
    """The total read back must still be the total."""
    world = build_voice_world(db)
    before = db_snapshot(db)
    result = confirm_voice_purchase(
        db, world.shopper_id, world.store_id, PODS, "dlg-1", quoted_total_minor=1
    )
    assert result.outcome == "price_changed" and result.quote is not None
    assert result.quote.total_minor == 3198
    assert db_snapshot(db) == before


def test_a_locked_shopper_cannot_confirm_even_with_a_verified_pin(db: Database) -> None:
    """The lock wins over everything."""
    world = build_voice_world(db, pin="4821")
    with db.write() as session:
        session.execute(update(Shopper).values(voice_locked_until=utcnow() + timedelta(minutes=5)))
    result = confirm_voice_purchase(
        db,
        world.shopper_id,
        world.store_id,
        PODS,
        "dlg-1",
        quoted_total_minor=3198,
        pin_verified=True,
    )
    assert result.outcome == "locked"
    assert count(db, Order) == 0


def test_find_product_skips_inactive_products(db: Database) -> None:
    """A product taken off sale is not found by voice."""
    world = build_voice_world(db)
    with db.write() as session:
        session.execute(update(Product).where(Product.sku == "BAT-AA-8").values(active=False))
    assert find_product(db, world.store_id, "double a batteries").status == "unknown"


def _readings(db: Database, world: VoiceWorld, points: list[tuple[float, float]]) -> None:
    now = utcnow()
    with db.write() as session:
        session.add_all(
            SupplyReading(
                device_id=world.appliance_device_id,
                slot="pods",
                value=value,
                unit="count",
                measured_at=now - timedelta(days=days_ago),
            )
            for days_ago, value in points
        )


def test_supply_level_uses_the_latest_reading_and_the_rate_since_the_refill(db: Database) -> None:
    """40 → 10, refill to 50, then 10 a day: 30 left lasts 3 days."""
    world = build_voice_world(db)
    _readings(db, world, [(5, 40), (3, 10), (2, 50), (1, 40), (0, 30)])
    level = supply_level(db, world.shopper_id, world.store_id, "pods")
    assert level is not None
    assert level.level == 30 and level.unit == "count"
    # The replenishment estimator plans with a cautious rate: within a few percent of 10.
    assert level.per_day == pytest.approx(10.0, rel=0.02)
    assert level.days_left == pytest.approx(3.0, rel=0.02)
    assert level.runout_at is not None


def test_supply_level_is_only_for_the_shoppers_own_appliances(db: Database) -> None:
    """Another shopper of another store hears nothing about these readings."""
    world = build_voice_world(db)
    other = build_voice_world(db, slug="other")
    _readings(db, world, [(1, 20), (0, 10)])
    assert supply_level(db, other.shopper_id, other.store_id, "pods") is None
    assert supply_level(db, world.shopper_id, other.store_id, "pods") is None


def test_reorder_and_open_orders_stay_within_the_store(db: Database) -> None:
    """History in one store is invisible from another."""
    world = build_voice_world(db)
    other = build_voice_world(db, slug="other")
    place_order(db, OrderRequest(world.store_id, world.shopper_id, "web", PODS))
    assert find_reorder(db, world.shopper_id, other.store_id, None).status == "no_history"
    assert open_orders(db, world.shopper_id, other.store_id) == []
    assert latest_cancellable(db, world.shopper_id, other.store_id) is None
    assert len(open_orders(db, world.shopper_id, world.store_id)) == 1


def test_latest_cancellable_skips_orders_past_their_window(db: Database) -> None:
    """Only an order still inside the cancel window is offered."""
    world = build_voice_world(db, cancel_window_minutes=30)
    place_order(db, OrderRequest(world.store_id, world.shopper_id, "web", PODS))
    now = utcnow()
    assert latest_cancellable(db, world.shopper_id, world.store_id, now=now) is not None
    later = now + timedelta(minutes=31)
    assert latest_cancellable(db, world.shopper_id, world.store_id, now=later) is None
    with db.read() as session:
        assert session.scalar(select(Order.status)) == "placed"
