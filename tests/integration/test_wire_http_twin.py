"""The device HTTP twin: /api/v1/device/{press,telemetry,orders} with CoAP's words, over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from auth.principal import SHOPPER_SCOPES
from auth.tokens import issue_token
from device_hub.http_twin import CONFIG_KEY, DeviceLimits
from orders.services.devices import LinkRules
from orders.services.merchant import set_device_test_mode
from orders.services.ordering import press
from orders.store.db import Database
from orders.store.model import DeviceLink, Order, Press, Product, SupplyReading
from tests.e2e.hub_fixtures import Devices, build_devices, device_token
from tests.factories import build_world, count, db_snapshot

PRESS = "/api/v1/device/press"
TELEMETRY = "/api/v1/device/telemetry"
SENML = "application/senml+json"


def _post(
    app: Flask, path: str, token: str | None, body: Any, *, raw: bytes | None = None,
    content_type: str = "application/json", address: str = "127.0.0.1",
) -> tuple[int, dict[str, Any], str, dict[str, str]]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client: FlaskClient = app.test_client()
    response = client.post(
        path,
        data=raw if raw is not None else json.dumps(body),
        headers=headers,
        content_type=content_type,
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code, response.get_json(), response.mimetype, dict(response.headers)


def _get_order(app: Flask, token: str, order_id: str) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get(
        f"/api/v1/device/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json()


def _pods(level: float) -> list[dict[str, object]]:
    return [{"n": "pods", "u": "count", "v": level}]


def test_a_press_places_an_order_with_the_coap_shape(app: Flask, db: Database) -> None:
    """201 {result: placed, order: {id, status, sku, quantity, total_minor, currency, …}}."""
    d = build_devices(db)
    status, body, mimetype, _ = _post(app, PRESS, d.button_token, {"seq": 1})
    assert (status, body["result"], mimetype) == (201, "placed", "application/json")
    assert set(body["order"]) == {"id", "status", "sku", "quantity", "total_minor", "currency",
                                  "cancel_until"}  # fmt: skip
    assert body["order"]["sku"] == "PODS" and count(db, Order) == 1


def test_press_results_duplicate_in_progress_and_a_new_boot(app: Flask, db: Database) -> None:
    """Same seq: duplicate; next seq while open: in_progress; seq 1 under a new boot: new press."""
    d = build_devices(db)
    first = _post(app, PRESS, d.button_token, {"seq": 1})[1]
    again = _post(app, PRESS, d.button_token, {"seq": 1})[1]
    assert again["result"] == "duplicate" and again["order"]["id"] == first["order"]["id"]
    assert _post(app, PRESS, d.button_token, {"seq": 2})[1]["result"] == "in_progress"
    rebooted = _post(app, PRESS, d.button_token, {"seq": 1, "boot": "b2"})
    assert rebooted[0] == 201 and rebooted[1]["result"] == "in_progress"
    assert count(db, Order) == 1 and count(db, Press) == 3


def test_a_press_under_approval_mode_needs_approval(app: Flask, db: Database) -> None:
    """A link requiring approval: needs_approval, order pending_approval."""
    d = build_devices(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    status, body, _, _ = _post(app, PRESS, d.button_token, {"seq": 1})
    assert (status, body["result"], body["order"]["status"]) == (
        201, "needs_approval", "pending_approval",
    )  # fmt: skip


def _bad_tokens(db: Database, d: Devices) -> dict[str, str | None]:
    with db.write() as session:
        shopper = issue_token(session, client_id="test", kind="shopper", scope=SHOPPER_SCOPES,
                              shopper_id=d.world.shopper_id).access_token  # fmt: skip
        narrow = issue_token(session, client_id=d.world.model_client_id, kind="device",
                             scope="orders:read", shopper_id=d.world.shopper_id,
                             store_id=d.world.store_id, device_id=d.world.device_id,
                             link_id=d.world.link_id).access_token  # fmt: skip
    return {"none": None, "bogus": "x" * 40, "shopper": shopper, "narrow": narrow}


@pytest.mark.parametrize("kind", ["none", "bogus", "shopper", "narrow"])
def test_a_press_without_a_device_token_is_401(app: Flask, db: Database, kind: str) -> None:
    """Missing, unknown, non-device or scope-less token: 401 invalid_token, nothing written."""
    d = build_devices(db)
    token = _bad_tokens(db, d)[kind]
    before = db_snapshot(db)
    status, body, mimetype, headers = _post(app, PRESS, token, {"seq": 1})
    assert (status, body["error"], mimetype) == (401, "invalid_token", "application/problem+json")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert db_snapshot(db) == before


def _pause(db: Database) -> None:
    with db.write() as session:
        session.execute(update(DeviceLink).values(paused=True))


def _no_stock(db: Database) -> None:
    with db.write() as session:
        session.execute(update(Product).values(stock=0))


def _cap(db: Database) -> None:
    with db.write() as session:
        session.execute(update(DeviceLink).values(per_order_cap_minor=100))


@pytest.mark.parametrize(
    ("prepare", "reason"), [(_pause, "paused"), (_no_stock, "out_of_stock"), (_cap, "spending_cap")]
)
def test_a_refused_press_is_403_with_the_reason(
    app: Flask, db: Database, prepare: Any, reason: str
) -> None:
    """403 {error: refused, reason} as problem+json; the database is unchanged."""
    d = build_devices(db)
    prepare(db)
    before = db_snapshot(db)
    status, body, mimetype, _ = _post(app, PRESS, d.button_token, {"seq": 1})
    assert (status, body["error"], body["reason"]) == (403, "refused", reason)
    assert mimetype == "application/problem+json" and body["status"] == 403
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "error"),
    [
        (b"not json", "application/json", 400, "bad_payload"),
        (b"", "application/json", 400, "bad_payload"),
        (b"[1]", "application/json", 400, "bad_payload"),
        (b'{"seq": NaN}', "application/json", 400, "bad_payload"),
        (b'{"seq": 1, "boot": "\\ud800"}', "application/json", 400, "bad_payload"),
        (b'{"seq": "1"}', "application/json", 400, "bad_seq"),
        (b'{"seq": -1}', "application/json", 400, "bad_seq"),
        (b'{"boot": "x"}', "application/json", 400, "bad_seq"),
        (b'{"seq": 1, "boot": 7}', "application/json", 400, "bad_boot"),
        (b'{"seq": 1, "pad": "' + b"x" * 1100 + b'"}', "application/json", 400, "bad_payload"),
        (b'{"seq": 1}', "text/plain", 415, "bad_payload"),
    ],
)
def test_a_bad_press_payload_is_refused_unchanged(
    app: Flask, db: Database, raw: bytes, content_type: str, status: int, error: str
) -> None:
    """Non-JSON, wrong types, lone surrogates, over 1 KiB, wrong media type: 4xx, no write."""
    d = build_devices(db)
    before = db_snapshot(db)
    got = _post(app, PRESS, d.button_token, None, raw=raw, content_type=content_type)
    assert (got[0], got[1]["error"], got[2]) == (status, error, "application/problem+json")
    assert db_snapshot(db) == before


def test_telemetry_stores_levels_and_reports_the_action(app: Flask, db: Database) -> None:
    """SenML JSON: 200 {accepted, action: none}; at the reorder point: ordered with the order."""
    d = build_devices(db)
    status, body, _, _ = _post(app, TELEMETRY, d.appliance_token, _pods(40), content_type=SENML)
    assert (status, body) == (200, {"accepted": 1, "action": "none"})
    status, body, _, _ = _post(app, TELEMETRY, d.appliance_token, _pods(5), content_type=SENML)
    assert (status, body["action"], body["order"]["sku"]) == (200, "ordered", "PODS")
    assert count(db, SupplyReading) == 2 and count(db, Order) == 1


def test_telemetry_under_approval_answers_needs_approval(app: Flask, db: Database) -> None:
    """Approval mode: needs_approval with the pending order."""
    d = build_devices(db, appliance_rules=LinkRules(reorder_point=10, approval_required=True))
    body = _post(app, TELEMETRY, d.appliance_token, _pods(1), content_type=SENML)[1]
    assert (body["action"], body["order"]["status"]) == ("needs_approval", "pending_approval")


def test_a_refused_reorder_keeps_the_levels_and_says_why(app: Flask, db: Database) -> None:
    """Out of stock: 200, action none, reason out_of_stock, the reading kept."""
    d = build_devices(db, stock=0)
    body = _post(app, TELEMETRY, d.appliance_token, _pods(1), content_type=SENML)[1]
    assert body == {"accepted": 1, "action": "none", "reason": "out_of_stock"}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "error"),
    [
        (b'{"n": "pods"}', SENML, 400, "bad_senml"),
        (b"[]", SENML, 400, "bad_senml"),
        (b"[{", SENML, 400, "bad_payload"),
        (b'[{"n": "milk", "v": 1}]', SENML, 400, "unknown_slot"),
        (b'[{"n": "pods", "u": "%", "v": 1}]', SENML, 400, "bad_unit"),
        (b'[{"n": "pods", "v": "1"}]', SENML, 400, "bad_senml"),
        (b'[{"n": "pods", "u": "\\udfff", "v": 1}]', SENML, 400, "bad_payload"),
        (b'[{"n": "pods", "v": 1}]', "application/xml", 415, "bad_payload"),
    ],
)
def test_bad_telemetry_is_refused_unchanged(
    app: Flask, db: Database, raw: bytes, content_type: str, status: int, error: str
) -> None:
    """A bad pack: 4xx problem+json with the CoAP word, nothing stored."""
    d = build_devices(db)
    before = db_snapshot(db)
    got = _post(app, TELEMETRY, d.appliance_token, None, raw=raw, content_type=content_type)
    assert (got[0], got[1]["error"], got[2]) == (status, error, "application/problem+json")
    assert db_snapshot(db) == before


def test_telemetry_needs_the_telemetry_scope(app: Flask, db: Database) -> None:
    """A shopper token: 401 invalid_token, nothing stored."""
    d = build_devices(db)
    token = _bad_tokens(db, d)["shopper"]
    before = db_snapshot(db)
    status, body, _, _ = _post(app, TELEMETRY, token, _pods(1), content_type=SENML)
    assert (status, body["error"]) == (401, "invalid_token")
    assert db_snapshot(db) == before


def test_an_order_reads_as_id_status_updated(app: Flask, db: Database) -> None:
    """GET: 200 {id, status, updated, expected} (`expected`: the promised day until a carrier's)."""
    d = build_devices(db)
    order = press(db, d.world.device_id, 1).order
    status, body = _get_order(app, d.button_token, order.id)
    assert status == 200 and body["id"] == order.id and body["status"] == "placed"
    assert set(body) == {"id", "status", "updated", "expected"} and body["updated"].endswith("Z")
    assert body["expected"] == (order.created_at + timedelta(days=2)).date().isoformat()


def test_unknown_and_foreign_orders_are_404(app: Flask, db: Database) -> None:
    """An unknown id, a malformed id and another store's order: 404 not_found alike."""
    d = build_devices(db)
    other = build_world(db, slug="other")
    theirs = press(db, other.device_id, 1).order
    for order_id in ("nope", "a" * 40, theirs.id):
        status, body = _get_order(app, d.button_token, order_id)
        assert (status, body["error"]) == (404, "not_found")


def test_reading_an_order_needs_a_device_token(app: Flask, db: Database) -> None:
    """No token: 401."""
    d = build_devices(db)
    order = press(db, d.world.device_id, 1).order
    response = app.test_client().get(f"/api/v1/device/orders/{order.id}")
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"


def test_presses_are_rate_limited_per_device_token(app: Flask, db: Database) -> None:
    """Over the device limit: 429 rate_limited with Retry-After; another device still presses."""
    d = build_devices(db)
    app.config[CONFIG_KEY] = DeviceLimits(device="2 per minute", address="100 per minute")
    assert _post(app, PRESS, d.button_token, {"seq": 1})[0] == 201
    assert _post(app, PRESS, d.button_token, {"seq": 1})[0] == 201
    presses = count(db, Press)
    status, body, mimetype, headers = _post(app, PRESS, d.button_token, {"seq": 2})
    assert (status, body["error"], mimetype) == (429, "rate_limited", "application/problem+json")
    assert int(headers["Retry-After"]) > 0 and count(db, Press) == presses
    assert _post(app, PRESS, d.appliance_token, {"seq": 1})[0] == 201


def test_requests_are_rate_limited_per_address(app: Flask, db: Database) -> None:
    """Over the address limit: 429 for any device there; another address still gets through."""
    d = build_devices(db)
    second = device_token(db, d.world, d.world.device_id, d.world.link_id)
    app.config[CONFIG_KEY] = DeviceLimits(device="100 per minute", address="2 per minute")
    assert _post(app, PRESS, d.button_token, {"seq": 1})[0] == 201
    assert _post(app, TELEMETRY, d.appliance_token, _pods(40), content_type=SENML)[0] == 200
    assert _post(app, PRESS, second, {"seq": 2})[0] == 429
    assert _post(app, PRESS, second, {"seq": 2}, address="10.0.0.9")[0] == 201


def test_a_test_units_press_and_status_say_test_and_a_dearer_press_says_why(
    app: Flask, db: Database
) -> None:
    """A unit in test mode: the press's order and its status carry `test: true`. Back to
    real and the price risen: needs_approval with `reason: price_changed` on the order."""
    d = build_devices(db)
    set_device_test_mode(db, d.world.store_id, d.world.device_id, True)
    status, body, _, _ = _post(app, PRESS, d.button_token, {"seq": 1})
    assert (status, body["result"], body["order"]["test"]) == (201, "placed", True)
    assert _get_order(app, d.button_token, body["order"]["id"])[1]["test"] is True
    set_device_test_mode(db, d.world.store_id, d.world.device_id, False)
    with db.write() as session:
        session.execute(update(Order).values(status="cancelled"))
        session.execute(update(Product).where(Product.sku == "PODS").values(price_minor=999))
    status, body, _, _ = _post(app, PRESS, d.button_token, {"seq": 2})
    assert (status, body["result"]) == (201, "needs_approval")
    assert body["order"]["reason"] == "price_changed" and "test" not in body["order"]
