"""One open order per household and product: a press, a voice yes and an appliance report
for a product the shopper already has on its way answer `in_progress`, and the database
itself (a partial unique index) keeps it so when they arrive at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from orders.queries.snapshots import PlaceResult
from orders.services import placing, presses
from orders.services.confirmation import Confirmation, confirm_voice_purchase
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.services.presses import PressRequest, press_batch
from orders.services.telemetry import TelemetryResult, record_telemetry
from orders.store.db import Database
from orders.store.model import Order, Product
from tests.e2e.hub_fixtures import Devices, build_devices
from tests.factories import count, db_snapshot

ROUNDS = 3


def _low() -> list[dict[str, object]]:
    return [{"n": "pods", "u": "count", "v": 1}]


def _voice_yes(db: Database, devices: Devices, dialog: str) -> Confirmation:
    world = devices.world
    return confirm_voice_purchase(
        db, world.shopper_id, world.store_id, [LineRequest("PODS", 1)], dialog,
        quoted_total_minor=500,
    )  # fmt: skip


def _pods_product(db: Database, store_id: int) -> int:
    with db.read() as session:
        found = session.scalar(
            select(Product.id).where(Product.store_id == store_id, Product.sku == "PODS")
        )
        assert found is not None
        return found


def _open_orders(db: Database, shopper_id: int) -> list[Any]:
    with db.read() as session:
        return list(
            session.execute(
                select(Order.id, Order.channel, Order.held_product_id).where(
                    Order.shopper_id == shopper_id, Order.status != "cancelled"
                )
            ).all()
        )


def _at_once(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released together; each answer, or the error it raised."""
    gate = threading.Barrier(len(calls))
    answers: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        gate.wait()
        try:
            answers[index] = call()
        except Exception as exc:  # the test fails on it below, with the error shown
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_a_press_a_voice_yes_and_an_appliance_report_at_once_make_exactly_one_order(
    db: Database,
) -> None:
    """Three channels, one shopper, one product, released together (several rounds, each a
    fresh household): exactly one order, and the other two answer in_progress with it."""
    for round_ in range(ROUNDS):
        _race_once(db, build_devices(db, slug=f"race{round_}"))


def _race_once(db: Database, devices: Devices) -> None:
    """One round: press, voice yes and appliance report for PODS, released together."""
    world = devices.world
    answers = _at_once(
        lambda: press_batch(db, [PressRequest(world.device_id, 1)])[0],
        lambda: _voice_yes(db, devices, "dialog"),
        lambda: record_telemetry(db, devices.appliance_id, _low(), policy=lambda _s: True),
    )
    pressed, spoken, reported = answers
    assert isinstance(pressed, PlaceResult), pressed
    assert isinstance(spoken, Confirmation), spoken
    assert isinstance(reported, TelemetryResult), reported
    orders = _open_orders(db, world.shopper_id)
    assert len(orders) == 1, orders
    only = orders[0]
    assert only.held_product_id == _pods_product(db, world.store_id)
    words = {
        "button": pressed.outcome,
        "voice": spoken.outcome,
        "appliance": reported.action if reported.order else reported.refused,
    }
    assert words.pop(only.channel) in ("placed", "ordered")
    assert set(words.values()) == {"in_progress"}
    if only.channel != "button":
        assert pressed.order.id == only.id  # a press answers with the household's order


def test_the_index_refuses_a_second_open_held_order_and_lets_orders_on_purpose_by(
    db: Database,
) -> None:
    """Written past the services: a second open order holding the same product for the same
    shopper is refused by the database; one that holds nothing, or one after the first is
    delivered, is not."""
    devices = build_devices(db)
    first = press_batch(db, [PressRequest(devices.world.device_id, 1)])[0]
    assert isinstance(first, PlaceResult)
    table = Order.__table__
    with db.read() as session:
        found = session.execute(select(table).where(table.c.id == first.order.id)).mappings()
        base = dict(found.one())
    base.update(device_id=None, link_id=None, device_product_id=None, idempotency_key=None)

    def add(order_id: str, **changes: object) -> None:
        with db.write() as session:
            session.execute(insert(Order), [{**base, "id": order_id, **changes}])

    with pytest.raises(IntegrityError):
        add("second-held", channel="voice")
    add("on-purpose", channel="web", held_product_id=None)
    with db.write() as session:
        session.execute(update(Order).where(Order.id == first.order.id).values(status="delivered"))
    add("after-delivery", channel="voice")
    assert count(db, Order) == 3


def test_a_voice_yes_decided_on_a_stale_read_is_stopped_by_the_index_and_answers_in_progress(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A yes whose read missed the appliance's order (as a process racing it would): the
    index refuses its insert, the re-run sees the order, and the answer is in_progress with
    the database as the appliance left it."""
    devices = build_devices(db)
    appliance = record_telemetry(db, devices.appliance_id, _low(), policy=lambda _s: True)
    assert appliance.action == "ordered"
    before = db_snapshot(db)
    real = placing.household_open_order
    reads: list[str | None] = []

    def stale_once(*args: Any) -> str | None:
        reads.append(None if not reads else real(*args))
        return reads[-1]

    monkeypatch.setattr(placing, "household_open_order", stale_once)
    answer = _voice_yes(db, devices, "stale")
    assert answer.outcome == "in_progress"
    assert reads[0] is None and reads[-1] is not None  # the re-run read the committed order
    assert answer.quote is not None and answer.quote.on_the_way is not None
    assert db_snapshot(db) == before


def test_a_press_batch_decided_on_a_stale_read_is_stopped_by_the_index_and_answers_in_progress(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The press batch likewise: its first attempt misses the voice order, the index
    refuses the batch, the retry answers in_progress with the voice order."""
    devices = build_devices(db)
    spoken = _voice_yes(db, devices, "first")
    assert spoken.outcome == "placed" and spoken.order is not None
    real = presses._Batch.read
    attempts: list[int] = []

    def stale_once(*args: Any, **kwargs: Any) -> Any:
        batch, items = real(*args, **kwargs)
        if not attempts:
            batch.held.clear()
        attempts.append(len(attempts))
        return batch, items

    monkeypatch.setattr(presses._Batch, "read", stale_once)
    answer = press_batch(db, [PressRequest(devices.world.device_id, 1)])[0]
    assert isinstance(answer, PlaceResult)
    assert (answer.outcome, answer.order.id) == ("in_progress", spoken.order.id)
    assert len(attempts) == 2 and count(db, Order) == 1


def test_an_appliance_report_while_a_voice_order_is_open_answers_none_with_in_progress(
    app: Flask, db: Database
) -> None:
    """Telemetry through the device twin: readings stored, `action:none`, `reason:in_progress`;
    and the button's press answers in_progress with the voice order."""
    devices = build_devices(db)
    spoken = _voice_yes(db, devices, "open")
    assert spoken.order is not None
    client = app.test_client()
    reported = client.post(
        "/api/v1/device/telemetry",
        json=_low(),
        headers={"Authorization": f"Bearer {devices.appliance_token}"},
        content_type="application/senml+json",
    )
    assert reported.status_code == 200, reported.text
    assert reported.get_json() == {"accepted": 1, "action": "none", "reason": "in_progress"}
    pressed = client.post(
        "/api/v1/device/press",
        json={"seq": 1},
        headers={"Authorization": f"Bearer {devices.button_token}"},
    )
    assert pressed.status_code == 201
    body = pressed.get_json()
    assert (body["result"], body["order"]["id"]) == ("in_progress", spoken.order.id)
    assert count(db, Order) == 1


def test_the_web_orders_more_on_purpose_and_its_order_holds_nothing(db: Database) -> None:
    """A web order while a press's order is open is placed; the press's order still holds
    the product, so a second device press answers in_progress."""
    devices = build_devices(db)
    world = devices.world
    first = press_batch(db, [PressRequest(world.device_id, 1)])[0]
    assert isinstance(first, PlaceResult) and first.outcome == "placed"
    request = OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("PODS", 3),))
    web = place_order(db, request)
    assert web.outcome == "placed"
    held = {o.channel: o.held_product_id for o in _open_orders(db, world.shopper_id)}
    assert held["web"] is None and held["button"] is not None
    again = record_telemetry(db, devices.appliance_id, _low(), policy=lambda _s: True)
    assert (again.action, again.refused) == ("none", "in_progress")
