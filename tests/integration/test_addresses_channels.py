"""A shopper with no delivery address, through every channel: CoAP and the HTTP twin
answer 4.03/403 needs_address, telemetry reports it, Alexa says so; nothing is ordered."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiocoap.numbers.codes import Code
from flask import Flask

from orders.services.telemetry import record_telemetry
from orders.store.db import Database
from orders.store.model import Address, Order, SupplyReading
from tests.conftest import AppFactory
from tests.e2e.hub_fixtures import CoapClient, build_devices, client, hub
from tests.factories import count, db_snapshot
from tests.voice_fixtures import (
    VOICE_SETTINGS,
    Clock,
    Conversation,
    build_voice_world,
    flask_sender,
    intent,
    speech_of,
)

__all__ = ["client", "hub"]  # fixtures used by name


def _drop_addresses(db: Database) -> None:
    with db.write() as session:
        session.execute(Address.__table__.delete())


def test_a_coap_press_without_an_address_is_403_needs_address(
    db: Database, client: CoapClient
) -> None:
    """4.03 {error: refused, reason: needs_address}; the database is as before."""
    devices = build_devices(db)
    _drop_addresses(db)
    before = db_snapshot(db)
    reply = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert reply.code == Code.FORBIDDEN
    assert reply.body == {"error": "refused", "reason": "needs_address"}
    assert db_snapshot(db) == before


def test_an_http_twin_press_without_an_address_is_403_needs_address(
    app: Flask, db: Database
) -> None:
    """403 problem+json {error: refused, reason: needs_address}; nothing written."""
    devices = build_devices(db)
    _drop_addresses(db)
    before = db_snapshot(db)
    answer = app.test_client().post(
        "/api/v1/device/press",
        json={"seq": 1},
        headers={"Authorization": f"Bearer {devices.button_token}"},
    )
    body = answer.get_json()
    assert (answer.status_code, body["error"], body["reason"]) == (403, "refused", "needs_address")
    assert answer.mimetype == "application/problem+json"
    assert db_snapshot(db) == before


def test_telemetry_without_an_address_keeps_the_reading_and_says_needs_address(
    db: Database,
) -> None:
    """The level is stored; action none, refused needs_address, no order."""
    devices = build_devices(db)
    _drop_addresses(db)
    result = record_telemetry(db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 1}])
    assert (result.action, result.refused) == ("none", "needs_address")
    assert count(db, SupplyReading) == 1 and count(db, Order) == 0


@pytest.fixture
def converse(app_factory: AppFactory, db: Database) -> Callable[..., Conversation]:
    """Talk to the whole app's /alexa as a voice world's shopper."""

    def begin(token: str) -> Conversation:
        return Conversation(flask_sender(app_factory(db, clock=Clock(), **VOICE_SETTINGS)), token)

    return begin


def test_a_voice_yes_without_an_address_says_to_add_one_and_orders_nothing(
    db: Database, converse: Callable[..., Conversation]
) -> None:
    """The spoken answer names the missing delivery address and the app; no order."""
    world = build_voice_world(db)
    _drop_addresses(db)
    talk = converse(world.token)
    talk.say(intent("BuyIntent", quantity="1", product="batteries"))
    answer = speech_of(talk.say(intent("AMAZON.YesIntent")))
    assert "delivery address" in answer and "app" in answer
    assert count(db, Order) == 0
