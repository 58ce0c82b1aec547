"""Test orders: a unit or model in test mode places orders marked `test` end to end, which
take no stock, spend nothing, never ship, are shown as TEST, and cancel themselves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from orders.domain.actions import Viewer, allowed_actions
from orders.domain.errors import NotAllowed
from orders.queries.history import find_reorder, open_orders
from orders.services import lifecycle
from orders.services.devices import LinkRules
from orders.services.merchant import list_store_orders, set_device_test_mode
from orders.services.ordering import press
from orders.services.webhook_dispatch import Dispatcher
from orders.services.webhooks import event_bodies
from orders.store.db import Database, utcnow
from orders.store.model import Device, Order, OrderEvent, Product
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import add_account, build_tenants, form_post, signed_in
from tests.factories import World, build_world, db_snapshot
from voice_skill import speech


def _test_world(db: Database, **rules: object) -> World:
    world = build_world(db, rules=LinkRules(product_sku="PODS", **rules))  # type: ignore[arg-type]
    set_device_test_mode(db, world.store_id, world.device_id, True)
    return world


def _stock(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(Product.stock).where(Product.sku == "PODS")) or 0)


def test_a_test_units_press_is_a_test_order_in_its_event_body_and_device_status(
    db: Database,
) -> None:
    """The press answers with `test`; the webhook body says `test: true` at the top and in
    its data; what the device observes says `test`; the stock is untouched."""
    world = _test_world(db)
    result = press(db, world.device_id, 1)
    assert result.outcome == "placed" and result.order.test
    assert result.order.summary()["test"] is True
    assert _stock(db) == 100
    with db.read() as session:
        rows = list(session.scalars(select(OrderEvent).where(OrderEvent.order_id.is_not(None))))
        bodies = event_bodies(session, rows)
    (body,) = bodies.values()
    assert body["type"] == "order.placed" and body["test"] is True and body["data"]["test"] is True
    status = lifecycle.status_body(lifecycle.get_order_status(db, result.order.id))
    assert status["test"] is True


def test_a_real_orders_bodies_carry_no_test_flag_for_devices(db: Database) -> None:
    """A real order keeps the device payloads as they were (no `test` key) and says
    `test: false` in the API's shape."""
    world = build_world(db)
    result = press(db, world.device_id, 1)
    assert "test" not in result.order.summary()
    assert "test" not in lifecycle.status_body(lifecycle.get_order_status(db, result.order.id))
    assert result.order.as_api()["test"] is False


def test_a_test_order_is_never_shipped_and_cancelling_it_returns_no_stock(db: Database) -> None:
    """The merchant may not ship it (reason `test`, nothing changes); a cancel leaves the
    stock as it was, since the order took none."""
    world = _test_world(db)
    order = press(db, world.device_id, 1).order
    assert "ship" not in allowed_actions(
        lifecycle.get_order(db, order.id, Viewer.merchant(world.store_id)),
        Viewer.merchant(world.store_id),
        utcnow(),
    )
    before = db_snapshot(db)
    with pytest.raises(NotAllowed) as refused:
        lifecycle.mark_shipped(db, order.id, world.store_id, "TRACK1")
    assert refused.value.reason == "test"
    assert db_snapshot(db) == before
    lifecycle.cancel_order(db, order.id, Viewer.shopper(world.shopper_id))
    assert _stock(db) == 100


def test_the_api_refuses_to_ship_a_test_order_with_reason_test(app: Flask, db: Database) -> None:
    """409 problem+json `test`, and the order says `test: true` in the API."""
    world = _test_world(db)
    order = press(db, world.device_id, 1).order
    token = merchant_token(db, world.store_id)
    got = call(app, "GET", f"/orders/{order.id}", token)
    assert got.status_code == 200 and got.get_json()["test"] is True
    before = db_snapshot(db)
    shipped = call(app, "POST", f"/orders/{order.id}/ship", token, {"carrier": "DHL",
                   "tracking_number": "1"})  # fmt: skip
    assert_problem(shipped, 409, "test")
    assert db_snapshot(db) == before


def test_test_orders_count_toward_no_cap(db: Database) -> None:
    """Under a monthly cap smaller than two orders, test orders keep coming (each after the
    last is closed), and a real order afterwards still fits the cap."""
    world = _test_world(db, monthly_cap_minor=500)
    for seq in (1, 2, 3):
        assert press(db, world.device_id, seq).order.test
        with db.write() as session:
            session.execute(Order.__table__.update().values(status="cancelled"))
    set_device_test_mode(db, world.store_id, world.device_id, False)
    real = press(db, world.device_id, 4)
    assert real.outcome == "placed" and not real.order.test


def test_the_worker_cancels_test_orders_once_their_window_ends(db: Database) -> None:
    """Before the window ends the sweep leaves it; after, the worker's pass cancels it,
    with an `order.cancelled` event, and leaves real orders alone."""
    world = _test_world(db)
    test_order = press(db, world.device_id, 1).order
    other = build_world(db, slug="real")
    real_order = press(db, other.device_id, 1).order
    with db.write() as session:
        assert lifecycle.cancel_lapsed_test_orders(session, test_order.cancel_until) == 0
    later = test_order.cancel_until + timedelta(seconds=1)
    Dispatcher(db, clock=lambda: later).run_once()
    with db.read() as session:
        statuses = dict(session.execute(select(Order.id, Order.status)).all())
        kinds = list(
            session.scalars(select(OrderEvent.type).where(OrderEvent.order_id == test_order.id))
        )
        cancelled_by = session.scalar(select(Order.cancelled_by).where(Order.id == test_order.id))
    assert statuses == {test_order.id: "cancelled", real_order.id: "placed"}
    assert kinds == ["order.created", "order.cancelled"] and cancelled_by == "test"
    assert _stock(db) == 100


def test_the_merchant_switches_a_unit_to_test_on_its_page_and_sees_test_badges(
    app: Flask, db: Database
) -> None:
    """The device page's switch makes the unit's next order a test order, shown as TEST on
    the merchant's and the shopper's pages; another store's device cannot be switched."""
    t = build_tenants(db)
    merchant = signed_in(app, t.merchant_email)
    with db.write() as session:
        session.execute(Order.__table__.update().values(status="delivered"))
    url = f"/stores/{t.ours.store_id}/devices/{t.ours.device_id}"
    assert form_post(merchant, f"{url}/test-mode", {"test_mode": "on"}).status_code == 302
    assert 'class="badge test"' in merchant.get(url).text
    order = press(db, t.ours.device_id, 2).order
    assert order.test
    assert "TEST" in merchant.get(f"/stores/{t.ours.store_id}/orders/{order.id}").text
    assert 'class="badge test"' in merchant.get(f"/stores/{t.ours.store_id}/orders").text
    mine = signed_in(app, t.shopper_email)
    assert 'class="badge test"' in mine.get("/my/orders").text
    assert 'class="badge test"' in mine.get(f"/my/orders/{order.id}").text
    # Orders to ship on the overview leave test orders out: they never ship.
    assert order.id not in merchant.get(f"/stores/{t.ours.store_id}/").text
    before = db_snapshot(db)
    theirs = f"/stores/{t.ours.store_id}/devices/{t.theirs.device_id}/test-mode"
    form_post(merchant, theirs, {"test_mode": "on"})
    assert db_snapshot(db) == before


def test_the_api_switches_a_unit_to_test_and_back(app: Flask, db: Database) -> None:
    """PATCH /devices/{id} `{test_mode}` answers with the device; a bad body changes nothing."""
    world = build_world(db)
    token = merchant_token(db, world.store_id)
    on = call(app, "PATCH", f"/devices/{world.device_id}", token, {"test_mode": True})
    assert on.status_code == 200, on.text
    assert on.get_json()["test_mode"] is True and on.get_json()["places_test_orders"] is True
    assert press(db, world.device_id, 1).order.test
    before = db_snapshot(db)
    bad = call(app, "PATCH", f"/devices/{world.device_id}", token, {"test_mode": "maybe"})
    assert 400 <= bad.status_code < 500
    assert db_snapshot(db) == before
    off = call(app, "PATCH", f"/devices/{world.device_id}", token, {"test_mode": False})
    assert off.get_json()["places_test_orders"] is False
    with db.read() as session:
        device = session.get(Device, world.device_id)
        assert device is not None and not device.test_mode


def test_a_test_models_orders_are_test_orders_and_listed_apart(db: Database) -> None:
    """The model's switch alone makes test orders; the store's list can leave them out."""
    world = build_world(db)
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        device.model.test_mode = True
    order = press(db, world.device_id, 1).order
    assert order.test
    assert list_store_orders(db, world.store_id, test=False).items == ()
    assert [o.id for o in list_store_orders(db, world.store_id, test=True).items] == [order.id]


def test_voice_says_an_open_test_order_is_a_test(db: Database) -> None:
    """Asked about open orders, the skill says it is a test order that never ships."""
    world = _test_world(db)
    press(db, world.device_id, 1)
    spoken = speech.order_status(open_orders(db, world.shopper_id, world.store_id))
    assert "a test order of 1 coffee pods" in spoken and "never ships" in spoken


def test_an_account_can_see_its_own_test_order_only(app: Flask, db: Database) -> None:
    """A test order stays the shopper's: another shopper's page does not show it."""
    t = build_tenants(db)
    set_device_test_mode(db, t.ours.store_id, t.ours.device_id, True)
    with db.write() as session:
        session.execute(Order.__table__.update().values(status="delivered"))
    order = press(db, t.ours.device_id, 2).order
    add_account(db, "eve@theirs.test", shopper_id=t.theirs.shopper_id)
    assert signed_in(app, "eve@theirs.test").get(f"/my/orders/{order.id}").status_code == 404


def test_a_spoken_reorder_never_repeats_a_test_order(db: Database) -> None:
    """A spoken reorder looks at real orders only: a test order is no purchase history."""
    world = _test_world(db)
    press(db, world.device_id, 1)
    assert find_reorder(db, world.shopper_id, world.store_id, None).status == "no_history"
