"""Voice and the household: "you already have N on the way" before buying more, and the
approval mode a shopper sets on the web, both through /alexa and the skill's handlers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select, update

from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.services.telemetry import record_telemetry
from orders.store.db import Database
from orders.store.model import Order, Shopper
from tests.conftest import AppFactory
from tests.dash_helpers import add_account, form_post, signed_in
from tests.factories import db_snapshot
from tests.voice_fixtures import (
    VOICE_SETTINGS,
    Conversation,
    VoiceWorld,
    build_voice_world,
    flask_sender,
    intent,
    speech_of,
)

Talk = Callable[[VoiceWorld], Conversation]


@pytest.fixture
def voice_app(app_factory: AppFactory, db: Database) -> Flask:
    """The whole app, taking Alexa requests without signatures (our skill id only)."""
    return app_factory(db, **VOICE_SETTINGS)


@pytest.fixture
def converse(voice_app: Flask) -> Talk:
    """Talk to /alexa as the world's shopper."""
    return lambda world: Conversation(flask_sender(voice_app), world.token)


def _pods_orders(db: Database) -> list[Order]:
    with db.read() as session:
        return list(session.scalars(select(Order).order_by(Order.created_at, Order.id)))


def _appliance_orders(db: Database, world: VoiceWorld) -> Order:
    """The coffee machine reports nearly empty and orders two packs of pods."""
    low = [{"n": "pods", "u": "count", "v": 1}]
    result = record_telemetry(db, world.appliance_device_id, low, policy=lambda _s: True)
    assert result.action == "ordered" and result.order is not None
    (order,) = _pods_orders(db)
    return order


def test_buying_what_an_appliance_already_ordered_says_it_is_on_the_way_and_orders_nothing(
    db: Database, converse: Talk
) -> None:
    """The read-back says how many are on the way and when they arrive; a no orders nothing."""
    world = build_voice_world(db)
    order = _appliance_orders(db, world)
    before = db_snapshot(db)
    talk = converse(world)
    said = speech_of(talk.say(intent("BuyIntent", quantity="1", product="coffee pods")))
    assert "You already have 1 on the way, arriving" in said
    assert "Say yes to order more" in said
    assert talk.attributes["pending"]["more"] is True
    talk.say(intent("AMAZON.NoIntent"))
    assert db_snapshot(db) == before
    assert [o.id for o in _pods_orders(db)] == [order.id]


def test_an_explicit_yes_after_the_on_the_way_read_back_orders_more_on_purpose(
    db: Database, converse: Talk
) -> None:
    """Yes to "you already have one on the way": a second order, which holds nothing, so the
    appliance's order still answers for the household."""
    world = build_voice_world(db)
    first = _appliance_orders(db, world)
    talk = converse(world)
    talk.say(intent("BuyIntent", quantity="2", product="coffee pods"))
    said = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "Done. I've ordered 2 coffee pods" in said
    orders = _pods_orders(db)
    assert [o.id for o in orders][0] == first.id and len(orders) == 2
    assert (orders[1].channel, orders[1].held_product_id) == ("voice", None)


def test_a_yes_after_an_appliance_ordered_meanwhile_reads_back_again_and_orders_nothing(
    db: Database, converse: Talk
) -> None:
    """The read-back had nothing on the way; the machine ordered before the yes: the yes says
    one is on the way and asks again; only a second yes orders more."""
    world = build_voice_world(db)
    talk = converse(world)
    first = speech_of(talk.say(intent("BuyIntent", quantity="1", product="coffee pods")))
    assert "on the way" not in first and "Should I order it?" in first
    order = _appliance_orders(db, world)
    before = db_snapshot(db)
    again = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "You already have 1 on the way, arriving" in again
    assert db_snapshot(db) == before
    done = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "Done." in done
    assert [o.id for o in _pods_orders(db)][0] == order.id and len(_pods_orders(db)) == 2


def test_an_open_web_order_of_another_product_does_not_hold_a_voice_purchase(
    db: Database, converse: Talk
) -> None:
    """Only the same product is held: beans on the way, pods are read back as usual."""
    world = build_voice_world(db)
    beans = OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("COF-BEANS-1K", 1),))
    place_order(db, beans)
    said = speech_of(converse(world).say(intent("BuyIntent", product="coffee pods")))
    assert "on the way" not in said and "Should I order it?" in said


def test_voice_approval_set_on_the_web_makes_the_skill_say_so_and_order_pending_approval(
    db: Database, voice_app: Flask, converse: Talk
) -> None:
    """The shopper switches approval on at /my/voice (and sees it there); the read-back says
    the order waits, the yes places it as pending_approval and says where to approve it."""
    world = build_voice_world(db)
    add_account(db, "ada@voice.test", shopper_id=world.shopper_id)
    web = signed_in(voice_app, "ada@voice.test")
    assert "Off: a voice purchase is ordered when you say yes." in web.get("/my/voice").text
    saved = form_post(web, "/my/voice", {"form": "approval", "approval": "y"})
    assert saved.status_code == 302
    page = web.get("/my/voice").text
    assert "On: a voice purchase waits for your approval" in page
    assert '<input checked id="approval" name="approval" type="checkbox"' in page
    talk = converse(world)
    said = speech_of(talk.say(intent("BuyIntent", quantity="1", product="batteries")))
    assert "It will wait for your approval on the Restock website." in said
    done = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "is waiting for approval" in done and "approve it on the Restock website" in done
    (order,) = _pods_orders(db)
    assert (order.channel, order.status) == ("voice", "pending_approval")


def test_voice_approval_off_again_orders_at_the_yes(
    db: Database, voice_app: Flask, converse: Talk
) -> None:
    """Unticked on the web: the next voice purchase is placed at the yes, and nothing else
    about the shopper changed."""
    world = build_voice_world(db)
    with db.write() as session:
        session.execute(update(Shopper).values(voice_approval=True))
    add_account(db, "ada@voice.test", shopper_id=world.shopper_id)
    web = signed_in(voice_app, "ada@voice.test")
    form_post(web, "/my/voice", {"form": "approval"})
    with db.read() as session:
        shopper = session.get(Shopper, world.shopper_id)
        assert shopper is not None and shopper.voice_approval is False
    talk = converse(world)
    said = speech_of(talk.say(intent("BuyIntent", quantity="1", product="batteries")))
    assert "approval" not in said
    talk.say(intent("AMAZON.YesIntent"))
    (order,) = _pods_orders(db)
    assert order.status == "placed"
