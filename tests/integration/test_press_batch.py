"""Group-committed presses: one transaction, and each press still all-or-nothing."""

from __future__ import annotations

from sqlalchemy import select

from orders.catalog import create_shopper
from orders.db import Database
from orders.devices import LinkRules, link_device, register_device
from orders.errors import OrderRefused
from orders.model import DeviceModel, Order, Press, Product
from orders.presses import PressRequest, press_batch
from tests.factories import build_world, count


def _second_device(db: Database, *, paused: bool) -> int:
    with db.write() as session:
        model = session.scalars(select(DeviceModel).where(DeviceModel.kind == "button")).one()
        shopper = create_shopper(session, name="Bea")
        device = register_device(session, model, "SN-2")
        link_device(session, device, shopper, LinkRules(product_sku="PODS", paused=paused))
        return device.id


def test_a_batch_places_each_press_and_answers_in_order(db: Database) -> None:
    """Presses of two devices and a repeat share one commit; answers keep request order."""
    world = build_world(db, stock=10)
    other = _second_device(db, paused=False)
    answers = press_batch(
        db,
        [
            PressRequest(world.device_id, 1),
            PressRequest(other, 1),
            PressRequest(world.device_id, 2),
            PressRequest(world.device_id, 1),
        ],
    )
    assert [getattr(a, "outcome", None) for a in answers] == [
        "placed",
        "placed",
        "in_progress",
        "duplicate",
    ]
    assert count(db, Order) == 2
    assert count(db, Press) == 3


def test_a_refused_press_in_a_batch_changes_nothing_of_its_own(db: Database) -> None:
    """A paused device's press is refused alone; its neighbours still commit."""
    world = build_world(db, stock=10)
    paused = _second_device(db, paused=True)
    answers = press_batch(db, [PressRequest(paused, 1), PressRequest(world.device_id, 1)])
    assert isinstance(answers[0], OrderRefused) and answers[0].reason == "paused"
    assert getattr(answers[1], "outcome", None) == "placed"
    with db.read() as session:
        assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 9
        assert session.scalars(select(Press.device_id)).all() == [world.device_id]


def test_out_of_stock_in_a_batch_refuses_only_the_press_that_ran_short(db: Database) -> None:
    """With one unit left, the first press takes it and the second is out_of_stock."""
    world = build_world(db, stock=1)
    other = _second_device(db, paused=False)
    answers = press_batch(db, [PressRequest(world.device_id, 1), PressRequest(other, 1)])
    assert getattr(answers[0], "outcome", None) == "placed"
    assert isinstance(answers[1], OrderRefused) and answers[1].reason == "out_of_stock"
    assert count(db, Order) == 1
