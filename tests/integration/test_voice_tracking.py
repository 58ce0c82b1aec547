"""OrderStatusIntent after carrier tracking, through the real /alexa endpoint."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from orders.services.lifecycle import mark_shipped
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.services.tracking import record_tracking_event
from orders.store.db import Database, utcnow
from tests.conftest import AppFactory
from tests.voice_fixtures import (
    VOICE_SETTINGS,
    Clock,
    Conversation,
    build_voice_world,
    flask_sender,
    intent,
    speech_of,
)

Talk = Callable[[str], Conversation]


@pytest.fixture
def converse(app_factory: AppFactory, db: Database) -> Talk:
    """Talk to the whole app's /alexa with `token`."""
    return lambda token: Conversation(
        flask_sender(app_factory(db, clock=Clock(), **VOICE_SETTINGS)), token
    )


def test_a_delayed_order_is_spoken_with_its_new_day_and_the_carriers_reason(
    db: Database, converse: Talk
) -> None:
    """After a slip the skill says delayed, the carrier's new day and why (SSML-escaped)."""
    world = build_voice_world(db, lead_time_days=2)
    line = (LineRequest("COF-PODS-50", 2),)
    order = place_order(db, OrderRequest(world.store_id, world.shopper_id, "voice", line)).order
    mark_shipped(db, order.id, world.store_id, "1Z1")
    now = utcnow()
    new_day = (now + timedelta(days=5)).date()
    record_tracking_event(
        db, store_id=world.store_id, order_id=order.id, external_id="e1", status="exception",
        occurred_at=now, estimated_delivery=new_day, description="Storm & flooding",
    )  # fmt: skip
    said = speech_of(converse(world.token).say(intent("OrderStatusIntent")))
    assert "2 coffee pods is delayed and should now arrive by" in said
    assert f"{new_day:%A}, {new_day:%B} {new_day.day}" in said
    assert "the carrier says: Storm &amp; flooding" in said


def test_an_earlier_carrier_day_is_spoken_without_a_delay(db: Database, converse: Talk) -> None:
    """Good news is just the new day: shipped and arriving by the carrier's day."""
    world = build_voice_world(db, lead_time_days=4)
    line = (LineRequest("COF-PODS-50", 1),)
    order = place_order(db, OrderRequest(world.store_id, world.shopper_id, "voice", line)).order
    mark_shipped(db, order.id, world.store_id, "1Z2")
    now = utcnow()
    sooner = (now + timedelta(days=1)).date()
    record_tracking_event(
        db, store_id=world.store_id, order_id=order.id, external_id="e1", status="in_transit",
        occurred_at=now, estimated_delivery=sooner,
    )  # fmt: skip
    said = speech_of(converse(world.token).say(intent("OrderStatusIntent")))
    assert "has shipped and should arrive by" in said and "delayed" not in said
    assert f"{sooner:%A}, {sooner:%B} {sooner.day}" in said
