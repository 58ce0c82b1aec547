"""Buying by voice through /alexa: read-back, yes, PIN, retries, and every way to say no."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from orders.services.lifecycle import Actor, cancel_order
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database
from orders.store.model import Order, Product
from tests.conftest import AppFactory
from tests.factories import count, db_snapshot
from tests.voice_fixtures import (
    VOICE_SETTINGS,
    Clock,
    Conversation,
    VoiceWorld,
    build_voice_world,
    ends_session,
    flask_sender,
    fresh_token,
    intent,
    speech_of,
)

Talk = Callable[..., Conversation]


@pytest.fixture
def converse(app_factory: AppFactory, db: Database) -> Talk:
    """Talk to the whole app's /alexa as the world's shopper, on a clock tests may move."""

    def begin(
        world: VoiceWorld, clock: Clock | None = None, token: str | None = None
    ) -> Conversation:
        app = app_factory(db, clock=clock or Clock(), **VOICE_SETTINGS)
        return Conversation(flask_sender(app), token or world.token)

    return begin


def _voice_orders(db: Database) -> list[Order]:
    with db.read() as session:
        query = select(Order).where(Order.channel == "voice").options(selectinload(Order.lines))
        return list(session.scalars(query))


def test_buy_reads_back_item_quantity_store_total_and_arrival_and_orders_nothing(
    db: Database,
    converse: Talk,
) -> None:
    """BuyIntent answers with the read-back and waits for a yes; no order exists yet."""
    world = build_voice_world(db, lead_time_days=2)
    before = db_snapshot(db)
    answer = converse(world).say(intent("BuyIntent", quantity="2", product="coffee pods"))
    said = speech_of(answer)
    assert "2 coffee pods" in said
    assert "Corner &amp; Co" in said
    assert "31.98 euros in total" in said
    assert "arriving by" in said and "Should I order it?" in said
    assert not ends_session(answer)
    assert db_snapshot(db) == before


def test_whole_conversation_with_pin_places_exactly_one_order_even_when_retried(
    db: Database,
    converse: Talk,
) -> None:
    """buy → read-back → yes → PIN → one order; the same yes and PIN again → still one."""
    world = build_voice_world(db, pin="4821")
    talk = converse(world)
    talk.say(intent("BuyIntent", quantity="2", product="coffee pods"))
    asked = talk.say(intent("AMAZON.YesIntent"))
    yes_body = talk.last_body
    assert "PIN" in speech_of(asked)
    assert _voice_orders(db) == []
    done = talk.say(intent("VoicePinIntent", pin="4821"))
    assert "Done. I've ordered 2 coffee pods for 31.98 euros" in speech_of(done)
    assert ends_session(done)
    again = talk.retry()  # Alexa retries the PIN request it got no answer to
    assert speech_of(again) == speech_of(done)
    talk.last_body = yes_body
    talk.retry()  # and the yes before it
    orders = _voice_orders(db)
    assert len(orders) == 1
    assert orders[0].total_minor == 3198 and orders[0].shopper_id == world.shopper_id
    assert orders[0].idempotency_key is not None and orders[0].idempotency_key.startswith("voice:")


def test_yes_without_pin_orders_once_and_a_retried_yes_orders_nothing_more(
    db: Database, converse: Talk
) -> None:
    """Without a PIN the yes orders; Alexa's retry of the same yes finds that order."""
    world = build_voice_world(db)
    talk = converse(world)
    talk.say(intent("BuyIntent", quantity="1", product="batteries"))
    first = talk.say(intent("AMAZON.YesIntent"))
    second = talk.retry()
    assert "Done" in speech_of(first)
    assert speech_of(second) == speech_of(first)
    assert len(_voice_orders(db)) == 1


def test_a_new_purchase_after_an_order_is_a_new_order(db: Database, converse: Talk) -> None:
    """Each read-back is its own dialog: buying again later makes a second order."""
    world = build_voice_world(db)
    talk = converse(world)
    for _ in range(2):
        talk.say(intent("BuyIntent", product="pods"))
        talk.say(intent("AMAZON.YesIntent"))
    assert len(_voice_orders(db)) == 2


@pytest.mark.parametrize("word", ["AMAZON.NoIntent", "AMAZON.StopIntent", "AMAZON.CancelIntent"])
def test_no_stop_or_cancel_after_the_read_back_places_nothing(
    db: Database, converse: Talk, word: str
) -> None:
    """No, Stop or Cancel drops the purchase; a yes afterwards has nothing to confirm."""
    world = build_voice_world(db)
    before = db_snapshot(db)
    talk = converse(world)
    talk.say(intent("BuyIntent", quantity="2", product="coffee pods"))
    dropped = talk.say(intent(word))
    assert "pending" not in talk.attributes
    assert "order" in speech_of(dropped).lower()
    if not ends_session(dropped):
        late = talk.say(intent("AMAZON.YesIntent"))
        assert "nothing waiting" in speech_of(late)
    assert db_snapshot(db) == before


@pytest.mark.parametrize("word", ["AMAZON.NoIntent", "AMAZON.StopIntent"])
def test_no_or_stop_while_the_pin_is_asked_places_nothing(
    db: Database, converse: Talk, word: str
) -> None:
    """Saying no instead of the PIN drops the purchase."""
    world = build_voice_world(db, pin="4821")
    talk = converse(world)
    talk.say(intent("BuyIntent", product="pods"))
    talk.say(intent("AMAZON.YesIntent"))
    talk.say(intent(word))
    assert _voice_orders(db) == []
    assert "pending" not in talk.attributes


def test_three_wrong_pins_lock_voice_purchases_for_an_hour(db: Database, converse: Talk) -> None:
    """Two misses leave tries; the third locks; an hour later buying works again."""
    world = build_voice_world(db, pin="4821")
    clock = Clock()
    talk = converse(world, clock)
    talk.say(intent("BuyIntent", product="pods"))
    talk.say(intent("AMAZON.YesIntent"))
    assert "2 more tries" in speech_of(talk.say(intent("VoicePinIntent", pin="1111")))
    assert "one more try" in speech_of(talk.say(intent("VoicePinIntent", pin="2222")))
    locked = talk.say(intent("VoicePinIntent", pin="3333"))
    assert "locked" in speech_of(locked) and ends_session(locked)
    talk = converse(world, clock)
    assert "locked" in speech_of(talk.say(intent("BuyIntent", product="pods")))
    clock.advance(minutes=61)
    # Access tokens live an hour too: Alexa would have refreshed its token by now.
    talk = converse(world, clock, fresh_token(db, world, clock()))
    talk.say(intent("BuyIntent", product="pods"))
    talk.say(intent("AMAZON.YesIntent"))
    talk.say(intent("VoicePinIntent", pin="4821"))
    assert len(_voice_orders(db)) == 1


def test_total_over_the_threshold_without_a_pin_is_refused_before_the_yes(
    db: Database, converse: Talk
) -> None:
    """Over the shopper's PIN threshold with no PIN set: nothing is read back or ordered."""
    world = build_voice_world(db, pin_threshold_minor=1000)
    before = db_snapshot(db)
    answer = converse(world).say(intent("BuyIntent", product="pods"))
    assert "voice PIN" in speech_of(answer)
    assert db_snapshot(db) == before


def test_total_under_the_threshold_without_a_pin_orders_on_yes(
    db: Database, converse: Talk
) -> None:
    """Under the threshold no PIN is asked."""
    world = build_voice_world(db, pin_threshold_minor=5000)
    talk = converse(world)
    talk.say(intent("BuyIntent", product="pods"))
    assert "Done" in speech_of(talk.say(intent("AMAZON.YesIntent")))


def test_ambiguous_product_asks_which_one_then_buys_the_one_named(
    db: Database, converse: Talk
) -> None:
    """ "coffee" matches pods and beans: ask, keep the quantity, then read back the choice."""
    world = build_voice_world(db)
    talk = converse(world)
    asked = speech_of(talk.say(intent("BuyIntent", quantity="3", product="coffee")))
    assert "coffee pods" in asked and "coffee beans" in asked
    readback = speech_of(talk.say(intent("BuyIntent", product="coffee beans")))
    assert "3 coffee beans" in readback


def test_entity_resolution_ids_pick_the_product(db: Database, converse: Talk) -> None:
    """When Alexa resolved the slot to our SKU, that product is used whatever was heard."""
    world = build_voice_world(db)
    answer = converse(world).say(
        intent("BuyIntent", ids={"product": ("COF-BEANS-1K",)}, product="the usual beans")
    )
    assert "1 coffee beans" in speech_of(answer)


def test_unknown_product_says_so_and_changes_nothing(db: Database, converse: Talk) -> None:
    """A product the store doesn't sell is named back, with a hint, and nothing else."""
    world = build_voice_world(db)
    before = db_snapshot(db)
    answer = converse(world).say(intent("BuyIntent", product="dog food"))
    assert "couldn't find dog food" in speech_of(answer)
    assert not ends_session(answer)
    assert db_snapshot(db) == before


@pytest.mark.parametrize("heard", ["?", "0", "100"])
def test_a_quantity_outside_1_to_99_is_asked_again(
    db: Database, converse: Talk, heard: str
) -> None:
    """Alexa's "?" for an unparseable number, 0 or 100: ask again, order nothing."""
    world = build_voice_world(db)
    talk = converse(world)
    answer = talk.say(intent("BuyIntent", quantity=heard, product="pods"))
    assert "between 1 and 99" in speech_of(answer)
    assert talk.say(intent("AMAZON.YesIntent")) and _voice_orders(db) == []


def test_not_enough_stock_is_said_before_the_yes(db: Database, converse: Talk) -> None:
    """The read-back refuses quantities the store can't deliver."""
    world = build_voice_world(db)
    answer = converse(world).say(intent("BuyIntent", quantity="9", product="salt and pepper"))
    assert "enough of that in stock" in speech_of(answer)


def test_product_names_with_ssml_characters_are_escaped(db: Database, converse: Talk) -> None:
    """ "Salt & Pepper <set>" reaches Alexa as well-formed SSML."""
    world = build_voice_world(db)
    said = speech_of(converse(world).say(intent("BuyIntent", product="salt and pepper")))
    assert "salt &amp; pepper &lt;set&gt;" in said
    ET.fromstring(said)  # raises on malformed SSML


def test_a_price_change_before_the_yes_is_read_back_and_not_ordered(
    db: Database, converse: Talk
) -> None:
    """The shopper agreed to one price; a different one is read back again first."""
    world = build_voice_world(db)
    talk = converse(world)
    talk.say(intent("BuyIntent", product="pods"))
    with db.write() as session:
        session.execute(
            update(Product).where(Product.sku == "COF-PODS-50").values(price_minor=1799)
        )
    changed = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "price has just changed" in changed and "17.99 euros" in changed
    assert _voice_orders(db) == []
    talk.say(intent("AMAZON.YesIntent"))
    assert [o.total_minor for o in _voice_orders(db)] == [1799]


def test_forged_session_lines_for_a_product_not_in_the_store_order_nothing(
    db: Database, converse: Talk
) -> None:
    """Session attributes are only trusted as far as the catalog agrees with them."""
    world = build_voice_world(db)
    talk = converse(world)
    talk.attributes = {
        "pending": {
            "kind": "purchase",
            "step": "confirm",
            "dialog": "forged-dialog",
            "lines": [["NOT-A-SKU", 1]],
            "total_minor": 0,
        }
    }
    answer = talk.say(intent("AMAZON.YesIntent"))
    assert "isn't available" in speech_of(answer)
    assert _voice_orders(db) == []


def test_a_yes_with_nothing_pending_orders_nothing(db: Database, converse: Talk) -> None:
    """A stray yes is answered, not acted on."""
    world = build_voice_world(db)
    before = db_snapshot(db)
    assert "nothing waiting" in speech_of(converse(world).say(intent("AMAZON.YesIntent")))
    assert db_snapshot(db) == before


def test_reorder_without_a_product_reads_back_the_last_order(db: Database, converse: Talk) -> None:
    """ "Reorder" repeats the newest order's lines."""
    world = build_voice_world(db)
    for sku, quantity in (("COF-PODS-50", 1), ("BAT-AA-8", 4)):
        place_order(
            db,
            OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest(sku, quantity),)),
        )
    talk = converse(world)
    assert "4 aa batteries" in speech_of(talk.say(intent("ReorderIntent", product=None)))
    talk.say(intent("AMAZON.YesIntent"))
    assert [line.sku for order in _voice_orders(db) for line in order.lines] == ["BAT-AA-8"]


def test_reorder_of_a_named_product_uses_its_last_quantity(db: Database, converse: Talk) -> None:
    """ "Reorder pods" finds pods in the history and their last quantity."""
    world = build_voice_world(db)
    place_order(
        db,
        OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("COF-PODS-50", 3),)),
    )
    answer = converse(world).say(intent("ReorderIntent", product="pods"))
    assert "3 coffee pods" in speech_of(answer)


def test_reorder_with_no_history_says_so(db: Database, converse: Talk) -> None:
    """Nothing ordered yet: nothing to reorder."""
    world = build_voice_world(db)
    answer = converse(world).say(intent("ReorderIntent", product=None))
    assert "haven't ordered anything" in speech_of(answer)


def test_reorder_of_something_never_bought_says_so(db: Database, converse: Talk) -> None:
    """A product outside the history is not silently bought."""
    world = build_voice_world(db)
    place_order(
        db,
        OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("BAT-AA-8", 1),)),
    )
    answer = converse(world).say(intent("ReorderIntent", product="coffee beans"))
    assert "past orders" in speech_of(answer)
    assert count(db, Order) == 1


def test_a_garbled_arrival_day_in_the_session_still_orders_without_a_day(
    db: Database, converse: Talk
) -> None:
    """Only the remembered day is dropped; the order read back is placed."""
    world = build_voice_world(db)
    talk = converse(world)
    talk.say(intent("BuyIntent", product="pods"))
    talk.attributes["pending"]["arrives"] = "next tuesday"
    said = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "Done" in said and "arrive" not in said
    assert len(_voice_orders(db)) == 1


def test_reorder_skips_cancelled_orders(db: Database, converse: Talk) -> None:
    """The last order the shopper kept is repeated, not one they cancelled."""
    world = build_voice_world(db)
    place_order(
        db,
        OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("BAT-AA-8", 1),)),
    )
    cancelled = place_order(
        db,
        OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("COF-PODS-50", 5),)),
    )
    cancel_order(db, cancelled.order.id, Actor.shopper(world.shopper_id))
    answer = converse(world).say(intent("ReorderIntent", product=None))
    assert "1 aa batteries" in speech_of(answer)
