"""One table of placement cases, each asked through the single-order path and the press
batch: both call the same decision, so both must give the same answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from orders.domain.errors import DomainError
from orders.queries.snapshots import OrderView, PlaceResult
from orders.services.addresses import add_address
from orders.services.devices import (
    LinkRules,
    active_link,
    link_device,
    register_device,
    unlink,
    update_link,
)
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.services.presses import PressRequest, press_batch
from orders.store.db import Database, utcnow
from orders.store.model import Address, Device, Order, Product, Shopper, Store
from tests.factories import HOME, World, build_world, db_snapshot, shopper_with_address


@dataclass(frozen=True)
class Asker:
    """Who asks: the device, and the shopper its link orders for."""

    device_id: int
    shopper_id: int
    store_id: int


def _single(db: Database, asker: Asker, seq: int) -> PlaceResult | DomainError:
    """The single-order path (`place_order`, as telemetry's `place_in`) for the device."""
    request = OrderRequest(
        asker.store_id, asker.shopper_id, "button", (LineRequest("PODS", 1),),
        idempotency_key=f"single:{asker.shopper_id}:{seq}", device_id=asker.device_id,
    )  # fmt: skip
    try:
        return place_order(db, request)
    except DomainError as refused:
        return refused


def _batch(db: Database, asker: Asker, seq: int) -> PlaceResult | DomainError:
    """The press batch (the hub's presses, and `services.press`) for the device."""
    return press_batch(db, [PressRequest(asker.device_id, seq)])[0]


PATHS = {"single": _single, "batch": _batch}


def _word(answer: PlaceResult | DomainError) -> str:
    return answer.reason if isinstance(answer, DomainError) else answer.outcome


def _order(answer: PlaceResult | DomainError) -> OrderView:
    assert isinstance(answer, PlaceResult), answer
    return answer.order


def _as_is(db: Database, world: World) -> Asker:
    return Asker(world.device_id, world.shopper_id, world.store_id)


def _rules(**rules: object) -> Callable[[Database, World], Asker]:
    def setup(db: Database, world: World) -> Asker:
        with db.write() as session:
            link = active_link(session, world.device_id)
            assert link is not None
            update_link(session, link, LinkRules(**rules))  # type: ignore[arg-type]
        return _as_is(db, world)

    return setup


def _vacation(days: float) -> Callable[[Database, World], Asker]:
    """The link is paused until `days` from now (negative: a vacation already over)."""

    def setup(db: Database, world: World) -> Asker:
        with db.write() as session:
            link = active_link(session, world.device_id)
            assert link is not None
            link.paused_until = utcnow() + timedelta(days=days)
        return _as_is(db, world)

    return setup


def _shopper_cap(db: Database, world: World) -> Asker:
    with db.write() as session:
        shopper = session.get(Shopper, world.shopper_id)
        assert shopper is not None
        shopper.monthly_cap_minor = 499
    return _as_is(db, world)


def _no_stock(db: Database, world: World) -> Asker:
    with db.write() as session:
        session.execute(Product.__table__.update().values(stock=0))
    return _as_is(db, world)


def _retired(db: Database, world: World) -> Asker:
    with db.write() as session:
        session.execute(Product.__table__.update().values(active=False))
    return _as_is(db, world)


def _unlinked(db: Database, world: World) -> Asker:
    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        unlink(session, link)
    return _as_is(db, world)


def _open_order(db: Database, world: World) -> Asker:
    """The device's link already has an open order (placed through the other path)."""
    press_batch(db, [PressRequest(world.device_id, 99)])
    return _as_is(db, world)


def _relinked(db: Database, world: World) -> Asker:
    """The first owner pressed (order still open) and unlinked; a second owner linked it."""
    press_batch(db, [PressRequest(world.device_id, 1)])
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        second = shopper_with_address(session, name="Bea")
        first_link = active_link(session, device.id)
        assert first_link is not None
        unlink(session, first_link)  # another shopper links only a device its owner let go
        link_device(session, device, second, LinkRules(product_sku="PODS"))
        return Asker(world.device_id, second.id, world.store_id)


def _no_address(db: Database, world: World) -> Asker:
    with db.write() as session:
        session.execute(Address.__table__.delete())
    return _as_is(db, world)


def _link_address_only(db: Database, world: World) -> Asker:
    """The link names an address of its own; the shopper has no default any more."""
    with db.write() as session:
        office = add_address(session, world.shopper_id, {**HOME, "line1": "1 Office Park"})
        link = active_link(session, world.device_id)
        assert link is not None
        update_link(session, link, LinkRules(address_id=office.id))
        session.execute(Address.__table__.delete().where(Address.is_default.is_(True)))
    return _as_is(db, world)


def _price(minor: int, **rules: object) -> Callable[[Database, World], Asker]:
    """The store's price of PODS moved to `minor` after the shopper agreed to 500."""

    def setup(db: Database, world: World) -> Asker:
        if rules:
            _rules(**rules)(db, world)
        with db.write() as session:
            session.execute(
                Product.__table__.update().where(Product.sku == "PODS").values(price_minor=minor)
            )
        return _as_is(db, world)

    return setup


def _reviewed_over(threshold: int) -> Callable[[Database, World], Asker]:
    """The store reviews orders of at least `threshold` (the button's order is 500)."""

    def setup(db: Database, world: World) -> Asker:
        with db.write() as session:
            session.execute(Store.__table__.update().values(review_orders_over_minor=threshold))
        return _as_is(db, world)

    return setup


def _household(
    channel: str, *, status: str = "placed", other_shopper: bool = False
) -> Callable[[Database, World], Asker]:
    """The shopper (or another one) already has an order of the link's product from
    `channel`, now `status`: a web or API order on its way holds a press back too."""

    def setup(db: Database, world: World) -> Asker:
        shopper_id = world.shopper_id
        if other_shopper:
            with db.write() as session:
                shopper_id = shopper_with_address(session, name="Bea").id
        request = OrderRequest(world.store_id, shopper_id, channel, (LineRequest("PODS", 2),))
        order = place_order(db, request).order
        if status != "placed":
            with db.write() as session:
                session.execute(
                    Order.__table__.update().where(Order.id == order.id).values(status=status)
                )
        return _as_is(db, world)

    return setup


def _substituted(db: Database, world: World) -> Asker:
    """The shopper agreed to AA batteries; the device now orders PODS."""
    with db.write() as session:
        link = active_link(session, world.device_id)
        assert link is not None
        link.consented_product_id = session.scalar(select(Product.id).where(Product.sku == "AA"))
    return _as_is(db, world)


def _test_device(db: Database, world: World) -> Asker:
    """The merchant switched this unit to test; no stock left and a tiny cap."""
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        device.test_mode = True
        session.execute(Product.__table__.update().values(stock=0))
    return _rules(per_order_cap_minor=1)(db, world)


def _test_model(db: Database, world: World) -> Asker:
    """The device's model is in test mode; the shopper's monthly cap is already spent."""
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        device.model.test_mode = True
    return _shopper_cap(db, world)


def _reviewed_after_consent(db: Database, world: World) -> Asker:
    _reviewed_over(500)(db, world)
    return _rules(approval_required=True)(db, world)


def _test_beside_household(db: Database, world: World) -> Asker:
    """A real voice order of the product is on its way; a test unit's order lives apart."""
    _household("voice")(db, world)
    return _test_device(db, world)


def _other_device_open(db: Database, world: World) -> Asker:
    """A second button of the same shopper ordered the same product; it is still open."""
    with db.write() as session:
        device = session.get(Device, world.device_id)
        shopper = session.get(Shopper, world.shopper_id)
        assert device is not None and shopper is not None
        second = register_device(session, device.model, "SN-2")
        link_device(session, second, shopper, LinkRules(product_sku="PODS"))
        second_id = second.id
    press_batch(db, [PressRequest(second_id, 1)])
    return _as_is(db, world)


CASES = [
    ("placed", _as_is, "placed"),
    ("approval", _rules(approval_required=True), "needs_approval"),
    ("paused", _rules(paused=True), "paused"),
    ("on vacation", _vacation(7), "paused"),
    ("back from vacation", _vacation(-1), "placed"),
    ("per-order cap", _rules(per_order_cap_minor=499), "spending_cap"),
    ("link monthly cap", _rules(monthly_cap_minor=499), "spending_cap"),
    ("shopper monthly cap", _shopper_cap, "spending_cap"),
    ("out of stock", _no_stock, "out_of_stock"),
    ("retired product", _retired, "unknown_sku"),
    ("unlinked", _unlinked, "unlinked"),
    ("open order", _open_order, "in_progress"),
    ("relinked device", _relinked, "placed"),
    ("no delivery address", _no_address, "needs_address"),
    ("the link's own address", _link_address_only, "placed"),
    ("price risen", _price(501), "needs_approval"),
    ("price risen within tolerance", _price(550, price_tolerance_minor=50), "placed"),
    ("price risen beyond tolerance", _price(551, price_tolerance_minor=50), "needs_approval"),
    ("price fallen", _price(450), "placed"),
    ("product substituted", _substituted, "needs_approval"),
    ("test device", _test_device, "placed"),
    ("test model", _test_model, "placed"),
    ("household: open voice order", _household("voice"), "in_progress"),
    ("household: open web order", _household("web"), "in_progress"),
    ("household: shipped api order", _household("api", status="shipped"), "in_progress"),
    ("household: order awaiting approval", _household("voice", status="pending_approval"),
     "in_progress"),
    ("household: delivered order", _household("voice", status="delivered"), "placed"),
    ("household: cancelled order", _household("voice", status="cancelled"), "placed"),
    ("household: another shopper's order", _household("voice", other_shopper=True), "placed"),
    ("household: another device's order", _other_device_open, "in_progress"),
    ("household: a test device beside a real order", _test_beside_household, "placed"),
]  # fmt: skip
# What each case's order is marked with: (test, hold reason).
MARKS = {
    "price risen": (False, "price_changed"),
    "price risen beyond tolerance": (False, "price_changed"),
    "product substituted": (False, "product_changed"),
    "test device": (True, None),
    "test model": (True, None),
    "household: a test device beside a real order": (True, None),
}
CASES += [
    ("store review", _reviewed_over(500), "needs_approval"),
    ("under the store's review", _reviewed_over(501), "placed"),
    ("shopper first, then the store", _reviewed_after_consent, "needs_approval"),
]
# Who each order that waits for approval waits for, by case.
APPROVER = {"approval": "shopper", "store review": "merchant",
            "shopper first, then the store": "shopper", "price risen": "shopper",
            "price risen beyond tolerance": "shopper",
            "product substituted": "shopper"}  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("case", "setup", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_single_path_and_the_press_batch_decide_alike(
    db: Database,
    path: str,
    case: str,
    setup: Callable[[Database, World], Asker],
    expected: str,
) -> None:
    """Each case answers with the same word through either path; a refusal changes nothing,
    and asking again answers with the same order."""
    world = build_world(db)
    asker = setup(db, world)
    before = db_snapshot(db)
    answer = PATHS[path](db, asker, 1)
    assert _word(answer) == expected
    if isinstance(answer, DomainError):
        assert db_snapshot(db) == before
        return
    order = _order(answer)
    assert order.shopper_id == asker.shopper_id
    assert (order.test, order.hold.reason if order.hold else None) == MARKS.get(case, (False, None))
    with db.read() as session:
        assert session.get(Order, order.id).approval_by == APPROVER.get(case)  # type: ignore[union-attr]
    if expected == "in_progress":  # answered with the open order: no order was added
        assert len(db_snapshot(db)["orders"]) == len(before["orders"])
    again = PATHS[path](db, asker, 1)
    assert _order(again) == order
    # Only a press records an in_progress answer; a single order's key names orders made.
    repeated = "in_progress" if (path, expected) == ("single", "in_progress") else "duplicate"
    assert _word(again) == repeated


def test_a_relinked_device_never_answers_with_the_previous_owners_order(db: Database) -> None:
    """A presses seq 1 and unlinks; B links the device and presses seq 1 through either
    path: B's own new order each time, never A's, and A's stays as it was."""
    world = build_world(db)
    first = press_batch(db, [PressRequest(world.device_id, 1)])[0]
    asker = _relinked_again(db, world)
    answers = [_batch(db, asker, 1), _single(db, asker, 1)]
    assert [_word(a) for a in answers] == ["placed", "in_progress"]
    orders = {_order(a).id for a in answers}
    assert len(orders) == 1 and _order(first).id not in orders
    with db.read() as session:
        owners = dict(session.execute(select(Order.id, Order.shopper_id)).all())
    assert owners == {_order(first).id: world.shopper_id, orders.pop(): asker.shopper_id}


def _relinked_again(db: Database, world: World) -> Asker:
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        second = shopper_with_address(session, name="Bea")
        first_link = active_link(session, device.id)
        assert first_link is not None
        unlink(session, first_link)  # another shopper links only a device its owner let go
        link_device(session, device, second, LinkRules(product_sku="PODS"))
        return Asker(world.device_id, second.id, world.store_id)


@pytest.mark.parametrize("path", PATHS)
def test_a_test_order_takes_no_stock_and_spends_nothing_on_either_path(
    db: Database, path: str
) -> None:
    """A test device's order leaves the stock as it was, and the link's monthly spending
    still lets a real order through afterwards."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", monthly_cap_minor=500))
    with db.write() as session:
        device = session.get(Device, world.device_id)
        assert device is not None
        device.test_mode = True
    asker = _as_is(db, world)
    test_order = _order(PATHS[path](db, asker, 1))
    assert test_order.test
    with db.read() as session:
        assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 100
    with db.write() as session:
        session.execute(Order.__table__.update().values(status="delivered"))
        device = session.get(Device, world.device_id)
        assert device is not None
        device.test_mode = False
    real = _order(PATHS[path](db, asker, 2))
    assert not real.test and real.status == "placed"


@pytest.mark.parametrize("path", PATHS)
def test_a_held_order_shows_what_was_agreed_and_what_it_asks(db: Database, path: str) -> None:
    """The order's hold names the agreed SKU and unit price and the new ones, alike on both
    paths and in the API's shape."""
    world = build_world(db)
    asker = _price(620)(db, world)
    order = _order(PATHS[path](db, asker, 1))
    assert order.as_api()["hold"] == {
        "reason": "price_changed",
        "was": {"sku": "PODS", "unit_price_minor": 500},
        "now": {"sku": "PODS", "unit_price_minor": 620},
    }
