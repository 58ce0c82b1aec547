"""Maintenance: reported conditions become one `device.fault` each, and a suggested order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from orders.services.lifecycle import approve_order
from orders.services.telemetry import record_telemetry
from orders.store.db import Database, utcnow
from orders.store.model import DeviceFault, Order, OrderEvent, SupplyReading
from tests.dash_helpers import add_account, form_post, signed_in
from tests.factories import count, db_snapshot
from tests.slot_fixtures import build_faulty_machine

TELEMETRY = "/api/v1/device/telemetry"
SENML = "application/senml+json"


def _telemetry(app: Flask, token: str, pack: list[dict[str, object]]) -> tuple[int, Any]:
    response = app.test_client().post(
        TELEMETRY, data=json.dumps(pack), headers={"Authorization": f"Bearer {token}"},
        content_type=SENML,
    )  # fmt: skip
    return response.status_code, response.get_json()


def _events(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.read() as session:
        rows = session.execute(
            select(OrderEvent.type, OrderEvent.data)
            .where(OrderEvent.type.like("device.fault%"))
            .order_by(OrderEvent.id)
        )
        return [(kind, data) for kind, data in rows]


def test_a_descale_flag_is_announced_once_while_it_lasts(app: Flask, db: Database) -> None:
    """descale true: one device.fault; true again: none; false: device.fault_cleared."""
    d = build_faulty_machine(db)
    status, body = _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}])
    assert (status, body) == (200, {"accepted": 1, "action": "none"})
    _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}, {"n": "pods", "v": 40}])
    ((kind, data),) = _events(db)
    assert kind == "device.fault" and data["condition"] == "descale"
    assert data["message"] == "Descale the machine." and data["part"]["sku"] == "DESCALER"
    assert data["order_id"] is None and data["device_id"] == d.appliance_id
    _telemetry(app, d.appliance_token, [{"n": "descale", "vb": False}])
    assert [kind for kind, _ in _events(db)] == ["device.fault", "device.fault_cleared"]
    _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}])
    assert [kind for kind, _ in _events(db)][-1] == "device.fault" and len(_events(db)) == 3
    assert count(db, Order) == 0  # the link doesn't allow suggested orders


def test_a_link_that_allows_it_gets_a_suggested_part_pending_approval(
    app: Flask, db: Database
) -> None:
    """descale with maintenance orders on: needs_approval, one descaler; approve: placed."""
    d = build_faulty_machine(db, maintenance_orders=True)
    status, body = _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}])
    assert (status, body["action"]) == (200, "needs_approval")
    assert (body["order"]["sku"], body["order"]["status"]) == ("DESCALER", "pending_approval")
    # The cycle counter asks for the same part: the open suggestion answers, no second order.
    _telemetry(app, d.appliance_token, [{"n": "cycles", "u": "count", "v": 320}])
    assert count(db, Order) == 1 and count(db, DeviceFault) == 2
    ((fault_order,),) = [[data["order_id"]] for kind, data in _events(db)[:1]]
    assert fault_order == body["order"]["id"]
    approved = approve_order(db, body["order"]["id"], shopper_id=d.world.shopper_id)
    assert approved.status == "placed"


def test_filter_life_and_error_codes(db: Database) -> None:
    """filter_life at 10 % is due, at 50 % not; a new error code replaces the old notice."""
    d = build_faulty_machine(db)
    record_telemetry(db, d.appliance_id, [{"n": "filter_life", "u": "%", "v": 50}])
    assert _events(db) == []
    record_telemetry(db, d.appliance_id, [{"n": "filter_life", "u": "%", "v": 10}])
    record_telemetry(db, d.appliance_id, [{"n": "error", "vs": "E12"}])
    record_telemetry(db, d.appliance_id, [{"n": "error", "v": 12}])
    kinds = [(kind, data["condition"], data["code"]) for kind, data in _events(db)]
    assert kinds == [
        ("device.fault", "filter_life", None),
        ("device.fault", "error", "E12"),
        ("device.fault_cleared", "error", "E12"),
        ("device.fault", "error", "12"),
    ]
    record_telemetry(db, d.appliance_id, [{"n": "error", "v": 0}])
    with db.read() as session:
        still = list(
            session.scalars(select(DeviceFault.condition).where(DeviceFault.cleared_at.is_(None)))
        )
    assert still == ["filter_life"]


def test_a_condition_of_the_wrong_type_is_refused_unchanged(app: Flask, db: Database) -> None:
    """descale as text, filter_life as a flag: 400 bad_senml, nothing stored."""
    d = build_faulty_machine(db)
    before = db_snapshot(db)
    for pack in ([{"n": "descale", "vs": "yes"}], [{"n": "filter_life", "vb": True}]):
        status, body = _telemetry(app, d.appliance_token, pack)
        assert (status, body["error"]) == (400, "bad_senml")
    assert db_snapshot(db) == before


def test_the_cycle_counter_is_kept_as_history_for_the_service_prediction(db: Database) -> None:
    """Counter readings are stored (as the slot history the estimator reads); flags are not."""
    d = build_faulty_machine(db)
    now = utcnow()
    pack = [{"bn": "", "bt": (now - timedelta(days=10)).timestamp()}]
    pack += [{"n": "cycles", "u": "count", "v": 10 * day, "t": day * 86_400} for day in range(11)]
    pack += [{"n": "descale", "vb": False}]
    record_telemetry(db, d.appliance_id, pack, now=now)
    assert count(db, SupplyReading) == 11


def test_the_fault_shows_on_the_shopper_and_merchant_device_pages(app: Flask, db: Database) -> None:
    """An open fault: its message and suggested order on both pages; cleared: gone from both."""
    d = build_faulty_machine(db, maintenance_orders=True)
    add_account(db, "ada@shop.test", shopper_id=d.world.shopper_id)
    add_account(db, "merchant@shop.test", store_id=d.world.store_id)
    order_id = _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}])[1]["order"]["id"]
    shopper = signed_in(app, "ada@shop.test").get("/my/devices").text
    merchant_url = f"/stores/{d.world.store_id}/devices/{d.appliance_id}"
    merchant = signed_in(app, "merchant@shop.test").get(merchant_url).text
    for page in (shopper, merchant):
        assert "Descale the machine." in page and "Descaler" in page
        assert f"/orders/{order_id}" in page
    _telemetry(app, d.appliance_token, [{"n": "descale", "vb": False}])
    assert "Descale the machine." not in signed_in(app, "ada@shop.test").get("/my/devices").text
    assert "Descale the machine." not in signed_in(app, "merchant@shop.test").get(merchant_url).text


def test_the_shopper_turns_suggested_parts_on_from_the_device_page(
    app: Flask, db: Database
) -> None:
    """Off at first: a fault only notifies; turned on: the next fault suggests the part."""
    d = build_faulty_machine(db)
    add_account(db, "ada@shop.test", shopper_id=d.world.shopper_id)
    browser = signed_in(app, "ada@shop.test")
    assert "Suggest parts for faults" in browser.get("/my/devices").text
    _telemetry(app, d.appliance_token, [{"n": "error", "v": 3}])
    turned = form_post(browser, f"/my/devices/{d.appliance_id}/maintenance", {"allowed": "y"})
    assert turned.status_code == 302
    assert "Stop suggesting parts for faults" in browser.get("/my/devices").text
    body = _telemetry(app, d.appliance_token, [{"n": "descale", "vb": True}])[1]
    assert body["action"] == "needs_approval" and body["order"]["sku"] == "DESCALER"
    # A device that isn't hers: 404, as every other device action.
    assert form_post(browser, "/my/devices/999999/maintenance", {"allowed": "y"}).status_code == 404
