"""Carrier tracking over HTTP: the merchant API route and the signed EasyPost receiver."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from auth.tokens import issue_token
from dashboard.carrier_hooks import easypost_signature
from orders.services.carrier_hooks import set_carrier_secret
from orders.services.lifecycle import mark_shipped
from orders.services.ordering import press
from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent
from tests.factories import World, build_world, db_snapshot

SECRET = "whk_sécret-0123456789"  # non-ASCII on purpose: EasyPost NFKD-normalises it


def _token(db: Database, store_id: int, scope: str = "orders:read orders:write") -> str:
    with db.write() as session:
        return issue_token(session, client_id="test", kind="merchant", scope=scope,
                           store_id=store_id, with_refresh=False).access_token  # fmt: skip


def _shipped(db: Database, world: World, seq: int = 1, ref: str = "EZ4000000004") -> str:
    order = press(db, world.device_id, seq).order
    mark_shipped(db, order.id, world.store_id, ref)
    return order.id


def _post_scan(app: Flask, token: str, order_id: str, body: Any) -> tuple[int, Any, str]:
    response = app.test_client().post(
        f"/api/v1/orders/{order_id}/tracking-events",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.get_json(silent=True), response.mimetype


def _scan(event_id: str, status: str, days_late: int | None = None, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    body = {"id": event_id, "status": status, "occurred_at": now.isoformat(), **extra}
    if days_late is not None:
        body["estimated_delivery"] = (now + timedelta(days=2 + days_late)).date().isoformat()
    return body


def _types(db: Database, order_id: str) -> list[str]:
    with db.read() as session:
        return list(
            session.scalars(
                select(OrderEvent.type)
                .where(OrderEvent.order_id == order_id)
                .order_by(OrderEvent.id)
            )
        )


def test_the_api_records_a_slip_and_a_delivery(app: Flask, db: Database) -> None:
    """A later estimate answers delayed with the reason; delivered delivers the order."""
    world = build_world(db)
    order_id = _shipped(db, world)
    token = _token(db, world.store_id)
    scan = _scan("e1", "exception", 3, description="Weather delay")
    status, body, _ = _post_scan(app, token, order_id, scan)
    assert status == 200 and body["delayed"] and body["delay_reason"] == "Weather delay"
    assert body["order"]["status"] == "shipped" and body["expected_delivery"]
    assert _types(db, order_id)[-1] == "order.delayed"
    status, body, _ = _post_scan(app, token, order_id, _scan("e2", "delivered"))
    assert status == 200 and body["order"]["status"] == "delivered"
    assert _types(db, order_id)[-1] == "order.delivered"


def test_the_api_replay_of_an_event_id_changes_nothing(app: Flask, db: Database) -> None:
    """The same carrier event id twice: 200 duplicate, the database as before."""
    world = build_world(db)
    order_id = _shipped(db, world)
    token = _token(db, world.store_id)
    scan = _scan("evt-1", "in_transit", 1)
    assert _post_scan(app, token, order_id, scan)[0] == 200
    before = db_snapshot(db)
    status, body, _ = _post_scan(app, token, order_id, scan)
    assert status == 200 and body["duplicate"] and not body["delayed"]
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {"id": "e1", "status": "lost", "occurred_at": "2026-12-06T09:00:00Z"},
        {"id": "e1", "status": "in_transit", "occurred_at": "2026-12-06T09:00:00"},
        {"id": "", "status": "in_transit", "occurred_at": "2026-12-06T09:00:00Z"},
        {"id": "e1", "status": "in_transit", "occurred_at": "2026-12-06T09:00:00Z", "x": 1},
        {"id": "e1", "status": "in_transit", "occurred_at": "2099-12-06T09:00:00Z"},
    ],
)
def test_the_api_refuses_bad_scans_with_problem_json_and_changes_nothing(
    app: Flask, db: Database, body: dict[str, Any]
) -> None:
    """Unknown status, naive or far-future time, no id, unknown field: 400 problem+json."""
    world = build_world(db)
    order_id = _shipped(db, world)
    token = _token(db, world.store_id)
    before = db_snapshot(db)
    status, _, mimetype = _post_scan(app, token, order_id, body)
    assert (status, mimetype) == (400, "application/problem+json")
    assert db_snapshot(db) == before


def test_the_api_keeps_tenants_apart_and_needs_the_write_scope(app: Flask, db: Database) -> None:
    """Another store's order is 404; a read-only token is 403; an unshipped order is 409."""
    ours = build_world(db)
    theirs = build_world(db, slug="other")
    their_order = _shipped(db, theirs)
    placed = press(db, ours.device_id, 1).order.id
    token = _token(db, ours.store_id)
    read_only = _token(db, ours.store_id, "orders:read")
    before = db_snapshot(db)
    assert _post_scan(app, token, their_order, _scan("e1", "delivered"))[0] == 404
    assert _post_scan(app, token, placed, _scan("e1", "in_transit"))[0] == 409
    assert _post_scan(app, read_only, placed, _scan("e1", "in_transit"))[0] == 403
    assert db_snapshot(db) == before


def _tracker_event(tracking_code: str, details: list[tuple[str, str, str]],
                   estimate: str | None) -> bytes:  # fmt: skip
    event = {
        "id": "evt_1", "object": "Event", "description": "tracker.updated", "mode": "test",
        "result": {
            "id": "trk_1", "object": "Tracker", "tracking_code": tracking_code,
            "status": details[-1][1], "carrier": "USPS", "est_delivery_date": estimate,
            "tracking_details": [
                {"object": "TrackingDetail", "datetime": at, "status": status, "message": text,
                 "status_detail": "unknown", "source": "USPS"}
                for at, status, text in details
            ],
        },
    }  # fmt: skip
    return json.dumps(event).encode()


def _hook(app: Flask, store_id: int, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hmac-Signature"] = signature
    return app.test_client().post(
        f"/hooks/carriers/easypost/{store_id}", data=body, headers=headers
    )


def test_a_signed_easypost_tracker_update_delays_then_delivers(app: Flask, db: Database) -> None:
    """tracker.updated with a later est_delivery_date → order.delayed; then delivered."""
    world = build_world(db)
    order_id = _shipped(db, world)
    set_carrier_secret(db, world.store_id, "easypost", SECRET)
    now = utcnow()
    first = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    late = (now + timedelta(days=6)).isoformat().replace("+00:00", "Z")
    body = _tracker_event("EZ4000000004", [(first, "in_transit", "Arrived at facility")], late)
    response = _hook(app, world.store_id, body, easypost_signature(SECRET, body))
    assert response.status_code == 200 and response.get_json()["delayed"] is True
    assert _types(db, order_id)[-1] == "order.delayed"
    replay = _hook(app, world.store_id, body, easypost_signature(SECRET, body))
    assert replay.get_json()["result"] == "duplicate"
    done = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    scans = [(first, "in_transit", "Arrived at facility"), (done, "delivered", "Delivered")]
    body = _tracker_event("EZ4000000004", scans, late)
    response = _hook(app, world.store_id, body, easypost_signature(SECRET, body))
    assert response.get_json()["status"] == "delivered"


@pytest.mark.parametrize("signature", [None, "", "hmac-sha256-hex=00", "wrong-secret"])
def test_a_bad_signature_is_401_problem_json_and_changes_nothing(
    app: Flask, db: Database, signature: str | None
) -> None:
    """Missing, empty, malformed or made with another secret: refused, nothing written."""
    world = build_world(db)
    _shipped(db, world)
    set_carrier_secret(db, world.store_id, "easypost", SECRET)
    now = utcnow().isoformat().replace("+00:00", "Z")
    body = _tracker_event("EZ4000000004", [(now, "delivered", "Delivered")], None)
    if signature == "wrong-secret":
        signature = easypost_signature("another secret entirely", body)
    before = db_snapshot(db)
    response = _hook(app, world.store_id, body, signature)
    assert (response.status_code, response.mimetype) == (401, "application/problem+json")
    assert db_snapshot(db) == before


def test_a_store_without_a_secret_or_another_stores_parcel_changes_nothing(
    app: Flask, db: Database
) -> None:
    """No secret set: 401. A valid signature for another store's tracking number: ignored."""
    ours = build_world(db)
    theirs = build_world(db, slug="other")
    _shipped(db, theirs, ref="EZ-THEIRS")
    now = utcnow().isoformat().replace("+00:00", "Z")
    body = _tracker_event("EZ-THEIRS", [(now, "delivered", "Delivered")], None)
    before = db_snapshot(db)
    assert _hook(app, ours.store_id, body, easypost_signature(SECRET, body)).status_code == 401
    set_carrier_secret(db, ours.store_id, "easypost", SECRET)
    before = db_snapshot(db)
    response = _hook(app, ours.store_id, body, easypost_signature(SECRET, body))
    assert response.status_code == 200 and response.get_json()["result"] == "ignored"
    assert db_snapshot(db) == before
