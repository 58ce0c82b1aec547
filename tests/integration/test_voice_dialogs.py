"""The other voice dialogs: linking, order status, cancelling, supplies, help, errors, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from auth.model import Token
from orders.services.lifecycle import Actor, get_order, mark_shipped
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from orders.store.model import SupplyReading
from tests.conftest import AppFactory
from tests.factories import db_snapshot
from tests.voice_fixtures import (
    VOICE_SETTINGS,
    Clock,
    Conversation,
    VoiceWorld,
    build_voice_world,
    ends_session,
    envelope,
    flask_sender,
    fresh_token,
    intent,
    launch,
    session_ended,
    speech_of,
)

Talk = Callable[..., Conversation]


@pytest.fixture
def converse(app_factory: AppFactory, db: Database) -> Talk:
    """Talk to the whole app's /alexa with `token`, on a clock tests may move."""

    def begin(token: str | None, clock: Clock | None = None) -> Conversation:
        return Conversation(
            flask_sender(app_factory(db, clock=clock or Clock(), **VOICE_SETTINGS)), token
        )

    return begin


def _order(db: Database, world: VoiceWorld, sku: str = "COF-PODS-50", quantity: int = 2) -> str:
    line = (LineRequest(sku, quantity),)
    result = place_order(db, OrderRequest(world.store_id, world.shopper_id, "voice", line))
    return result.order.id


def _is_link_card(answer: dict[str, Any]) -> bool:
    card = (answer.get("response") or {}).get("card") or {}
    return card.get("type") == "LinkAccount" and "link your Restock account" in speech_of(answer)


# --- account linking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_part",
    [launch(), intent("BuyIntent", product="pods"), intent("OrderStatusIntent")],
    ids=["launch", "buy", "status"],
)
def test_without_an_access_token_the_answer_is_a_link_account_card(
    db: Database, converse: Talk, request_part: dict[str, object]
) -> None:
    """No account link: a LinkAccount card and a spoken explanation, and nothing changes."""
    build_voice_world(db)
    before = db_snapshot(db)
    answer = converse(None).say(request_part)
    assert _is_link_card(answer)
    assert db_snapshot(db) == before


def test_an_expired_access_token_gets_a_link_account_card(db: Database, converse: Talk) -> None:
    """A token past its lifetime is no link."""
    world = build_voice_world(db)
    stale = fresh_token(db, world, utcnow() - timedelta(hours=2))
    assert _is_link_card(converse(stale).say(intent("OrderStatusIntent")))


def test_a_revoked_access_token_gets_a_link_account_card(db: Database, converse: Talk) -> None:
    """Unlinking in the Alexa app revokes the token; the next request is unlinked at once."""
    world = build_voice_world(db)
    with db.write() as session:
        session.execute(update(Token).values(revoked_at=utcnow()))
    assert _is_link_card(converse(world.token).say(intent("OrderStatusIntent")))


def test_an_unknown_access_token_gets_a_link_account_card(db: Database, converse: Talk) -> None:
    """A made-up token is no link either."""
    build_voice_world(db)
    answer = converse("x" * 43).say(intent("BuyIntent", product="pods"))
    assert _is_link_card(answer)


def test_a_token_without_the_place_scope_cannot_buy(db: Database, converse: Talk) -> None:
    """A read-only link can ask about orders but not buy."""
    world = build_voice_world(db, scope="orders:read supplies:read")
    talk = converse(world.token)
    assert "no open orders" in speech_of(talk.say(intent("OrderStatusIntent")))
    assert _is_link_card(talk.say(intent("BuyIntent", product="pods")))


def test_launch_with_a_link_welcomes_and_listens(db: Database, converse: Talk) -> None:
    """ "Alexa, open Restock" greets and keeps the session open."""
    world = build_voice_world(db)
    answer = converse(world.token).say(launch())
    assert "Welcome to Restock" in speech_of(answer)
    assert not ends_session(answer)


# --- order status and cancelling ----------------------------------------------------------


def test_order_status_names_open_orders_with_status_and_expected_day(
    db: Database, converse: Talk
) -> None:
    """Placed and shipped orders are read with the day they should arrive."""
    world = build_voice_world(db, lead_time_days=3)
    _order(db, world, "BAT-AA-8", 1)
    shipped = _order(db, world, "COF-PODS-50", 2)
    mark_shipped(db, shipped, world.store_id)
    said = speech_of(converse(world.token).say(intent("OrderStatusIntent")))
    arrival = (utcnow() + timedelta(days=3)).strftime("%B ")
    assert "2 open orders" in said
    assert "1 aa batteries is placed" in said
    assert "2 coffee pods has shipped" in said
    assert arrival in said


def test_order_status_with_no_open_orders_says_so(db: Database, converse: Talk) -> None:
    """Nothing open: say so."""
    world = build_voice_world(db)
    assert "no open orders" in speech_of(converse(world.token).say(intent("OrderStatusIntent")))


def test_cancel_order_asks_first_and_cancels_on_yes(db: Database, converse: Talk) -> None:
    """CancelOrderIntent names the newest order; only the yes cancels it."""
    world = build_voice_world(db)
    order_id = _order(db, world)
    talk = converse(world.token)
    asked = speech_of(talk.say(intent("CancelOrderIntent")))
    assert "Cancel your order of 2 coffee pods" in asked
    assert get_order(db, order_id, Actor.shopper(world.shopper_id)).status == "placed"
    done = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "is cancelled" in done
    assert get_order(db, order_id, Actor.shopper(world.shopper_id)).status == "cancelled"


def test_cancel_order_answered_no_keeps_the_order(db: Database, converse: Talk) -> None:
    """No keeps it."""
    world = build_voice_world(db)
    _order(db, world)
    talk = converse(world.token)
    talk.say(intent("CancelOrderIntent"))
    before = db_snapshot(db)
    assert "kept your order" in speech_of(talk.say(intent("AMAZON.NoIntent")))
    assert db_snapshot(db) == before


def test_cancel_order_outside_the_window_has_nothing_to_cancel(
    db: Database, converse: Talk
) -> None:
    """After the cancel window the order is not offered."""
    world = build_voice_world(db, cancel_window_minutes=30)
    _order(db, world)
    clock = Clock()
    clock.advance(minutes=31)
    said = speech_of(converse(world.token, clock).say(intent("CancelOrderIntent")))
    assert "no order that can still be cancelled" in said


def test_the_window_closing_between_question_and_yes_is_said_and_changes_nothing(
    db: Database,
    converse: Talk,
) -> None:
    """Yes after the window closed: too late, and the order stays placed."""
    world = build_voice_world(db, cancel_window_minutes=30)
    order_id = _order(db, world)
    clock = Clock()
    clock.advance(minutes=29)
    talk = converse(world.token, clock)
    talk.say(intent("CancelOrderIntent"))
    clock.advance(minutes=2)
    assert "can no longer be cancelled" in speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert get_order(db, order_id, Actor.shopper(world.shopper_id)).status == "placed"


# --- supplies -----------------------------------------------------------------------------


def _readings(db: Database, world: VoiceWorld, points: list[tuple[float, float]]) -> None:
    now = utcnow()
    with db.write() as session:
        for days_ago, value in points:
            session.add(
                SupplyReading(
                    device_id=world.appliance_device_id,
                    slot="pods",
                    value=value,
                    unit="count",
                    measured_at=now - timedelta(days=days_ago),
                )
            )


def test_supply_level_says_how_many_are_left_and_for_how_long(db: Database, converse: Talk) -> None:
    """12 pods three days ago, 6 now: "about 6 coffee pods left, enough for about 3 days"."""
    world = build_voice_world(db)
    _readings(db, world, [(3, 12), (1.5, 9), (0, 6)])
    said = speech_of(converse(world.token).say(intent("SupplyLevelIntent", product="coffee")))
    assert "about 6 coffee pods left, enough for about 3 days" in said


def test_supply_level_without_readings_says_so(db: Database, converse: Talk) -> None:
    """No telemetry yet: say so rather than guess."""
    world = build_voice_world(db)
    said = speech_of(converse(world.token).say(intent("SupplyLevelIntent", product="pods")))
    assert "don't have readings for pods" in said


def test_supply_level_for_a_product_no_appliance_measures_says_so(
    db: Database, converse: Talk
) -> None:
    """Batteries are not in any linked appliance."""
    world = build_voice_world(db)
    _readings(db, world, [(0, 6)])
    said = speech_of(converse(world.token).say(intent("SupplyLevelIntent", product="batteries")))
    assert "don't have readings for batteries" in said


# --- help, fallback, stop, session end, unknown intents ------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AMAZON.HelpIntent", "You can say"),
        ("AMAZON.FallbackIntent", "Sorry, I didn't get that"),
        ("MadeUpIntent", "Sorry, I didn't get that"),
    ],
)
def test_help_fallback_and_unknown_intents_speak_and_keep_listening(
    db: Database, converse: Talk, name: str, expected: str
) -> None:
    """Help, the fallback and an intent we never defined all get speech and a reprompt."""
    world = build_voice_world(db)
    answer = converse(world.token).say(intent(name))
    assert expected in speech_of(answer)
    assert answer["response"]["reprompt"]
    assert not ends_session(answer)


def test_stop_ends_the_session(db: Database, converse: Talk) -> None:
    """Stop says goodbye and closes the session."""
    world = build_voice_world(db)
    answer = converse(world.token).say(intent("AMAZON.StopIntent"))
    assert "Goodbye" in speech_of(answer) and ends_session(answer)


def test_session_ended_request_gets_an_empty_response(db: Database, converse: Talk) -> None:
    """Alexa forbids speech in reply to SessionEndedRequest."""
    world = build_voice_world(db)
    answer = converse(world.token).say(session_ended("EXCEEDED_MAX_REPROMPTS"))
    assert "outputSpeech" not in answer["response"]


# --- bad input through the composed app ----------------------------------------------------


@pytest.fixture
def app_client(app_factory: AppFactory, db: Database) -> FlaskClient:
    """The whole Restock app (create_app) with signature checks off, over the test database."""
    return app_factory(db, alexa_verify=False).test_client()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'{"request": "BuyIntent"}',
        b"\xff\xfe\x00",
    ],
    ids=["broken", "empty", "array", "request-not-object", "not-utf8"],
)
def test_malformed_bodies_are_400_problem_json_and_change_nothing(
    db: Database,
    app_client: FlaskClient,
    body: bytes,
) -> None:
    """Bodies that are not an Alexa envelope get HTTP 400 application/problem+json."""
    build_voice_world(db)
    before = db_snapshot(db)
    response = app_client.post("/alexa", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 400
    assert db_snapshot(db) == before


def test_an_envelope_with_an_unknown_request_type_is_400(
    db: Database, app_client: FlaskClient
) -> None:
    """A well-formed, fresh envelope whose request type ask-sdk doesn't know is refused."""
    world = build_voice_world(db)
    body = envelope({"type": "Made.Up.Request"}, token=world.token)
    response = app_client.post("/alexa", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_a_stale_request_is_refused_even_with_signature_checks_off(
    db: Database,
    app_client: FlaskClient,
) -> None:
    """RESTOCK_ALEXA_VERIFY=off keeps the 150-second timestamp rule."""
    world = build_voice_world(db)
    old = utcnow() - timedelta(minutes=5)
    body = envelope(intent("OrderStatusIntent"), token=world.token, now=old)
    response = app_client.post("/alexa", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400


def test_the_composed_app_answers_a_real_conversation(
    db: Database, app_client: FlaskClient
) -> None:
    """/alexa is mounted by create_app: buy and yes through it place one voice order."""
    world = build_voice_world(db)

    def send(body: bytes) -> tuple[int, dict[str, object]]:
        response = app_client.post("/alexa", data=body, content_type="application/json")
        return response.status_code, response.get_json()

    talk = Conversation(send, world.token)
    talk.say(intent("BuyIntent", quantity="2", product="double a batteries"))
    assert "Done" in speech_of(talk.say(intent("AMAZON.YesIntent")))


def test_a_request_type_no_handler_knows_gets_the_fallback_not_an_error(
    db: Database, converse: Talk
) -> None:
    """A CanFulfillIntentRequest (not declared by the skill) is answered politely."""
    world = build_voice_world(db)
    request = {"type": "CanFulfillIntentRequest", "intent": {"name": "BuyIntent", "slots": {}}}
    answer = converse(world.token).say(request)
    assert "Sorry, I didn't get that" in speech_of(answer)
