"""Webhooks from the outbox to a real receiver on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.webhooks import DISABLE_AFTER, MAX_ATTEMPTS
from orders.services.devices import LinkRules
from orders.services.lifecycle import Actor, approve_order, cancel_order, mark_shipped
from orders.services.ordering import press
from orders.services.webhook_dispatch import Dispatcher
from orders.services.webhooks import (
    create_endpoint,
    list_deliveries,
    list_endpoints,
    list_events,
    redeliver,
    rotate_secret,
    send_test_event,
    update_endpoint,
)
from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent, WebhookDelivery
from tests.factories import World, build_world, db_snapshot
from tests.webhook_receiver import Receiver, webhook_receiver


class Clock:
    """A clock the test moves forward."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A verifying receiver on loopback."""
    with webhook_receiver() as running:
        yield running


def _subscribe(
    db: Database, world: World, receiver: Receiver, events: list[str] | None = None
) -> int:
    endpoint = create_endpoint(db, world.store_id, receiver.url, events, allow_private=True)
    assert endpoint.secret is not None and endpoint.secret.startswith("whsec_")
    receiver.secret = endpoint.secret
    return endpoint.id


def _types_of(receiver: Receiver, order_id: str) -> list[str]:
    """The types received about one order (orders are delivered side by side)."""
    return [r.body["type"] for r in receiver.received if r.body["data"].get("id") == order_id]


def _drain(dispatcher: Dispatcher) -> None:
    while dispatcher.run_once():
        pass


def _dispatcher(db: Database, clock: Clock | None = None) -> Dispatcher:
    return Dispatcher(db, allow_private=True, clock=clock or Clock(), concurrency=4)


def test_an_order_placed_and_shipped_arrives_signed_in_order(
    db: Database, receiver: Receiver
) -> None:
    """order.placed then order.shipped reach the receiver, verified, with the order as data."""
    world = build_world(db)
    _subscribe(db, world, receiver)
    order = press(db, world.device_id, 1).order
    mark_shipped(db, order.id, world.store_id, "TRACK-1")
    _drain(_dispatcher(db))
    assert receiver.types() == ["order.placed", "order.shipped"]
    placed, shipped = receiver.received
    assert placed.body["data"]["status"] == "placed"
    assert shipped.body["data"]["status"] == "shipped"
    assert {"id", "status", "channel", "lines", "total_minor", "currency", "ship_to"} <= set(
        placed.body["data"]
    )
    assert placed.body["data"]["id"] == order.id
    assert placed.webhook_id == placed.body["id"]
    assert set(placed.body) == {"id", "type", "created", "data"}


def test_device_link_changes_are_events_too(db: Database, receiver: Receiver) -> None:
    """Linking and unlinking a device send device.linked and device.unlinked."""
    world = build_world(db)
    _subscribe(db, world, receiver, ["device.linked", "device.unlinked"])
    from orders.services.devices import active_link, link_device, unlink
    from orders.store.model import Device, Shopper

    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        unlink(session, link)
        device = session.get(Device, world.device_id)
        shopper = session.get(Shopper, world.shopper_id)
        assert device is not None and shopper is not None
        link_device(session, device, shopper, LinkRules(product_sku="PODS"))
    _drain(_dispatcher(db))
    assert receiver.types() == ["device.unlinked", "device.linked"]
    assert receiver.received[1].body["data"]["serial"] == "SN-1"


def test_an_endpoint_gets_only_the_types_it_subscribed_to(db: Database, receiver: Receiver) -> None:
    """A subscription to order.shipped skips order.placed."""
    world = build_world(db)
    _subscribe(db, world, receiver, ["order.shipped"])
    order = press(db, world.device_id, 1).order
    mark_shipped(db, order.id, world.store_id, "T")
    _drain(_dispatcher(db))
    assert receiver.types() == ["order.shipped"]


def test_approval_and_rejection_have_their_own_types(db: Database, receiver: Receiver) -> None:
    """pending_approval, approved, and rejected are told apart."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    _subscribe(db, world, receiver)
    first = press(db, world.device_id, 1).order
    approve_order(db, first.id, world.shopper_id)
    cancel_order(db, first.id, Actor.shopper(world.shopper_id))
    from orders.services.lifecycle import reject_order

    second = press(db, world.device_id, 2).order
    reject_order(db, second.id, world.shopper_id)
    _drain(_dispatcher(db))
    assert _types_of(receiver, first.id) == [
        "order.pending_approval",
        "order.approved",
        "order.cancelled",
    ]
    assert _types_of(receiver, second.id) == ["order.pending_approval", "order.rejected"]


def test_a_failing_receiver_is_retried_later_under_the_same_webhook_id(
    db: Database, receiver: Receiver
) -> None:
    """A 500 leaves the delivery pending with a backoff; the retry carries the same id."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    press(db, world.device_id, 1)
    clock = Clock()
    dispatcher = _dispatcher(db, clock)
    receiver.script = [500]
    _drain(dispatcher)
    assert receiver.received == [] and receiver.attempts == 1
    (log,) = list_deliveries(db, world.store_id, endpoint_id)
    assert (log.status, log.attempts, log.last_status_code) == ("pending", 1, 500)
    assert log.last_response == "not now"
    assert log.next_attempt_at is not None and log.next_attempt_at > clock.now
    _drain(dispatcher)
    assert receiver.attempts == 1  # not due yet
    clock.advance(timedelta(minutes=1))
    _drain(dispatcher)
    assert receiver.types() == ["order.placed"]
    assert receiver.ids() == [f"evt_{log.event_id}"]
    assert list_deliveries(db, world.store_id, endpoint_id)[0].status == "delivered"


def test_an_orders_later_event_waits_for_the_earlier_one(db: Database, receiver: Receiver) -> None:
    """While order.placed is being retried, order.shipped of the same order is held back."""
    world = build_world(db)
    _subscribe(db, world, receiver)
    order = press(db, world.device_id, 1).order
    mark_shipped(db, order.id, world.store_id, "T")
    clock = Clock()
    dispatcher = _dispatcher(db, clock)
    receiver.script = [500]
    _drain(dispatcher)
    assert receiver.attempts == 1 and receiver.received == []
    clock.advance(timedelta(minutes=1))
    _drain(dispatcher)
    assert receiver.types() == ["order.placed", "order.shipped"]


def test_after_the_last_retry_the_delivery_fails_and_can_be_redelivered(
    db: Database, receiver: Receiver
) -> None:
    """Every attempt failing marks it failed; redelivering sends it again."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    press(db, world.device_id, 1)
    clock = Clock()
    dispatcher = _dispatcher(db, clock)
    receiver.script = [503] * MAX_ATTEMPTS
    for _ in range(MAX_ATTEMPTS):
        _drain(dispatcher)
        (log,) = list_deliveries(db, world.store_id, endpoint_id)
        clock.now = log.next_attempt_at or clock.now
    (log,) = list_deliveries(db, world.store_id, endpoint_id)
    assert log.last_attempt_at is not None and log.created_at is not None
    assert timedelta(hours=20) < log.last_attempt_at - log.created_at < timedelta(hours=30)
    assert (log.status, log.attempts) == ("failed", MAX_ATTEMPTS)
    assert receiver.attempts == MAX_ATTEMPTS
    redeliver(db, world.store_id, endpoint_id, log.id)
    dispatcher.clock = utcnow
    _drain(dispatcher)
    assert receiver.types() == ["order.placed"]


def test_an_endpoint_failing_for_days_is_disabled_with_a_notice(
    db: Database, receiver: Receiver
) -> None:
    """Failures past DISABLE_AFTER disable the endpoint and say why; enabling clears it."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    clock = Clock()
    dispatcher = _dispatcher(db, clock)
    receiver.script = [500] * 50
    for seq in range(1, 4):
        press(db, world.device_id, seq)
        cancel_order(db, press(db, world.device_id, seq).order.id, Actor.merchant(world.store_id))
        _drain(dispatcher)
        clock.advance(DISABLE_AFTER / 2 + timedelta(hours=1))
    (endpoint,) = list_endpoints(db, world.store_id)
    assert not endpoint.enabled
    assert endpoint.disabled_reason and "failed since" in endpoint.disabled_reason
    attempts = receiver.attempts
    clock.advance(timedelta(days=1))
    _drain(dispatcher)
    assert receiver.attempts == attempts  # a disabled endpoint gets nothing
    enabled = update_endpoint(db, world.store_id, endpoint_id, enabled=True)
    assert enabled.enabled and enabled.disabled_reason is None


def test_a_private_url_is_refused_unless_allowed_and_changes_nothing(db: Database) -> None:
    """Loopback, private and link-local URLs are refused by default; nothing is written."""
    world = build_world(db)
    before = db_snapshot(db)
    for url in (
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://localhost/x",
        "ftp://example.com/x",
    ):
        with pytest.raises(InvalidRequest):
            create_endpoint(db, world.store_id, url)
    with pytest.raises(InvalidRequest):
        create_endpoint(db, world.store_id, "https://example.com/x", ["order.exploded"])
    assert db_snapshot(db) == before
    assert create_endpoint(db, world.store_id, "http://127.0.0.1:9/x", allow_private=True).id


def test_a_name_resolving_to_loopback_is_refused_when_connecting(
    db: Database, receiver: Receiver
) -> None:
    """A name that resolves to loopback at delivery time (DNS rebinding) gets no POST."""
    world = build_world(db)
    endpoint = create_endpoint(db, world.store_id, "https://example.com/x", allow_private=False)
    # Point it at loopback by name behind the API's back, as DNS rebinding would.
    with db.write() as session:
        from orders.store.model import WebhookEndpoint

        row = session.get(WebhookEndpoint, endpoint.id)
        assert row is not None
        row.url = receiver.url.replace("127.0.0.1", "localhost")
    press(db, world.device_id, 1)
    dispatcher = Dispatcher(db, allow_private=False, clock=Clock())
    _drain(dispatcher)
    assert receiver.attempts == 0
    (log,) = list_deliveries(db, world.store_id, endpoint.id)
    assert log.status == "pending" and "refused address" in (log.last_response or "")


def test_the_event_feed_replays_what_a_merchant_missed(db: Database) -> None:
    """Events since a cursor come back oldest first, with the next cursor."""
    world = build_world(db)
    order = press(db, world.device_id, 1).order
    mark_shipped(db, order.id, world.store_id, "T")
    events, cursor = list_events(db, world.store_id)
    assert [e["type"] for e in events] == ["device.linked", "order.placed", "order.shipped"]
    later, again = list_events(db, world.store_id, after=events[0]["id"])
    assert [e["type"] for e in later] == ["order.placed", "order.shipped"]
    assert list_events(db, world.store_id, after=cursor) == ([], cursor)
    other = build_world(db, slug="other")
    assert [e["type"] for e in list_events(db, other.store_id)[0]] == ["device.linked"]
    with pytest.raises(InvalidRequest):
        list_events(db, world.store_id, after="nonsense")


def test_a_test_event_reaches_only_its_endpoint(db: Database, receiver: Receiver) -> None:
    """send_test_event delivers webhook.test to the one endpoint asked."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    create_endpoint(db, world.store_id, "http://127.0.0.1:9/other", allow_private=True)
    with db.write() as session:
        session.query(OrderEvent).update({"published_at": utcnow()})
    send_test_event(db, world.store_id, endpoint_id)
    _drain(_dispatcher(db))
    assert receiver.types() == ["webhook.test"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


def test_a_rotated_secret_signs_from_then_on(db: Database, receiver: Receiver) -> None:
    """After rotation the old secret no longer verifies; the new one does."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    old = receiver.secret
    rotated = rotate_secret(db, world.store_id, endpoint_id)
    assert rotated.secret and rotated.secret != old
    press(db, world.device_id, 1)
    clock = Clock()
    _drain(_dispatcher(db, clock))
    assert receiver.received == [] and receiver.rejected
    receiver.secret = rotated.secret
    clock.advance(timedelta(minutes=1))
    _drain(_dispatcher(db, clock))
    assert receiver.types() == ["order.placed"]


def test_another_stores_endpoint_is_not_found(db: Database) -> None:
    """A merchant cannot see or change another store's endpoint."""
    world = build_world(db)
    other = build_world(db, slug="other")
    endpoint = create_endpoint(db, world.store_id, "https://example.com/hook")
    with pytest.raises(NotFound):
        rotate_secret(db, other.store_id, endpoint.id)
    with pytest.raises(NotFound):
        list_deliveries(db, other.store_id, endpoint.id)


def test_a_receiver_that_times_out_is_retried_with_backoff(
    db: Database, receiver: Receiver
) -> None:
    """No answer within the total time-out counts as a failure, retried later."""
    world = build_world(db)
    endpoint_id = _subscribe(db, world, receiver)
    press(db, world.device_id, 1)
    clock = Clock()
    dispatcher = Dispatcher(db, allow_private=True, clock=clock, total_timeout=0.5)
    receiver.script = [("slow", 2.0)]
    _drain(dispatcher)
    (log,) = list_deliveries(db, world.store_id, endpoint_id)
    assert (log.status, log.attempts, log.last_status_code) == ("pending", 1, None)
    assert log.last_response == "timed out"
    clock.advance(timedelta(minutes=1))
    _drain(dispatcher)
    assert receiver.ids()[-1] == f"evt_{log.event_id}"
    assert list_deliveries(db, world.store_id, endpoint_id)[0].status == "delivered"


def _scan(db: Database) -> None:
    from orders.services.low_alerts import scan_low_levels

    with db.write() as session:
        scan_low_levels(session, utcnow())


def _low_events(db: Database, store_id: int) -> list[tuple[str, Any]]:
    events, _ = list_events(db, store_id)
    return [
        (e["type"], e["data"].get("sku") or e["data"].get("level"))
        for e in events
        if e["type"].endswith(".low")
    ]


def test_low_stock_is_announced_once_until_it_recovers(db: Database) -> None:
    """stock.low when a product falls under the threshold, not again until it was restocked."""
    from orders.store.model import Product

    world = build_world(db)
    _scan(db)
    assert _low_events(db, world.store_id) == []
    for stock in (5, 3, 50, 2):
        with db.write() as session:
            session.query(Product).filter(Product.sku == "AA").update({"stock": stock})
        _scan(db)
    assert _low_events(db, world.store_id) == [("stock.low", "AA"), ("stock.low", "AA")]


def test_low_supply_is_announced_once_until_it_recovers(db: Database) -> None:
    """supply.low when a slot's newest level is at or under a fifth of its capacity."""
    from orders.services.devices import register_device
    from orders.store.model import DeviceModel, SupplyReading

    world = build_world(db)
    with db.write() as session:
        model = session.query(DeviceModel).filter(DeviceModel.kind == "appliance").one()
        device_id = register_device(session, model, "COFFEE-1").id
    _scan(db)  # the first scan only sets where it starts
    for value in (30.0, 5.0, 4.0, 40.0, 3.0):
        with db.write() as session:
            session.add(SupplyReading(device_id=device_id, slot="pods", value=value,
                                      unit="count", measured_at=utcnow()))  # fmt: skip
        _scan(db)
    assert _low_events(db, world.store_id) == [("supply.low", 5.0), ("supply.low", 3.0)]


def test_posts_to_one_endpoint_reuse_one_connection(receiver: Receiver) -> None:
    """Successive POSTs, answered 204 or 500 with a body longer than the kept prefix, go
    over one kept-alive TCP connection (each answer read to its end); the prefix is kept."""
    from orders.services.webhook_sending import Sender

    receiver.secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    receiver.script = [200, 200, ("long", 1000), 200]
    sender = Sender(allow_private=True)
    try:
        outcomes = [
            sender.post(receiver.url, receiver.secret, f"evt_{i}",
                        {"id": f"evt_{i}", "type": "webhook.test", "created": "now", "data": {}})
            for i in range(5)
        ]  # fmt: skip
    finally:
        sender.close()
    assert [outcome.ok for outcome in outcomes] == [True, True, False, True, True]
    assert outcomes[2].response == "x" * 200
    assert len(receiver.ids()) == 4 and len(receiver.peers) == 1
