"""Merchant REST API, devices: list and filter, supply and run-out, revoke; device models."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from auth.principal import DEVICE_SCOPES, InvalidToken
from auth.tokens import issue_token, verify_access_token
from orders.services.devices import register_device
from orders.store.db import Database, utcnow
from orders.store.model import DeviceModel, SupplyReading
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import add_readings, build_tenants
from tests.factories import db_snapshot


def _appliances(db: Database, store_id: int, *serials: str) -> tuple[int, list[int]]:
    with db.write() as session:
        model = session.scalar(
            select(DeviceModel).where(
                DeviceModel.store_id == store_id, DeviceModel.kind == "appliance"
            )  # fmt: skip
        )
        assert model is not None
        return model.id, [register_device(session, model, serial).id for serial in serials]


def test_devices_filter_by_model_status_and_low_supply(app: Flask, db: Database) -> None:
    """Each filter narrows the list to the devices it names; another store's never appear."""
    t = build_tenants(db)
    model_id, (coffee, spare) = _appliances(db, t.ours.store_id, "COFFEE-1", "COFFEE-2")
    add_readings(db, coffee, [30.0, 5.0])
    add_readings(db, spare, [5.0, 45.0])
    token = merchant_token(db, t.ours.store_id, "devices:read")

    def ids(query: str) -> list[int]:
        response = call(app, "GET", f"/devices?{query}", token)
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.get_json()["devices"]]

    assert ids("") == [spare, coffee, t.ours.device_id]
    assert ids(f"model={model_id}") == [spare, coffee]
    assert ids("low_supply=true") == [coffee]
    assert ids("status=unlinked") == [spare, coffee]
    assert ids("status=active") == [t.ours.device_id]
    first = call(app, "GET", "/devices?limit=2", token).get_json()
    rest = call(app, "GET", f"/devices?limit=2&cursor={first['next_cursor']}", token).get_json()
    assert [d["id"] for d in first["devices"] + rest["devices"]] == ids("")
    assert t.theirs.device_id not in ids("limit=100")
    assert_problem(call(app, "GET", "/devices?status=bogus", token), 400)


def test_a_device_shows_its_supply_level_and_predicted_run_out(app: Flask, db: Database) -> None:
    """GET /devices/{id}: the slot's level, use per day and run-out time from its readings."""
    t = build_tenants(db)
    _, (coffee,) = _appliances(db, t.ours.store_id, "COFFEE-1")
    now = utcnow()
    with db.write() as session:  # 4 pods a day for 8 days, down to 10
        session.add_all(
            SupplyReading(device_id=coffee, slot="pods", value=42 - 2 * d, unit="count",
                          measured_at=now - timedelta(days=8 - d / 2))
            for d in range(17)
        )  # fmt: skip
    response = call(app, "GET", f"/devices/{coffee}", merchant_token(db, t.ours.store_id))
    assert response.status_code == 200, response.text
    device = response.get_json()
    assert (device["serial"], device["model"]["kind"], device["status"]) == (
        "COFFEE-1", "appliance", "unlinked")  # fmt: skip
    (supply,) = device["supplies"]
    assert (supply["slot"], supply["unit"], supply["level"]) == ("pods", "count", 10.0)
    assert supply["rate_per_day"] == pytest.approx(4, rel=0.05)
    runout = datetime.fromisoformat(supply["runout_at"])
    assert (runout - now) / timedelta(days=1) == pytest.approx(2.5, rel=0.1)


def test_revoking_a_device_ends_its_link_and_its_token(app: Flask, db: Database) -> None:
    """POST /devices/{id}/revoke → 200 unlinked; the device's access token stops working."""
    t = build_tenants(db)
    with db.write() as session:
        device_token = issue_token(
            session, client_id=t.ours.model_client_id, kind="device", scope=DEVICE_SCOPES,
            shopper_id=t.ours.shopper_id, store_id=t.ours.store_id,
            device_id=t.ours.device_id, link_id=t.ours.link_id,
        ).access_token  # fmt: skip
    response = call(app, "POST", f"/devices/{t.ours.device_id}/revoke",
                    merchant_token(db, t.ours.store_id, "devices:write devices:read"))  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.get_json()["status"] == "unlinked"
    with pytest.raises(InvalidToken):
        verify_access_token(db, device_token, "orders:place")


def test_another_stores_device_is_404_and_stays_linked(app: Flask, db: Database) -> None:
    """Their device id reads and revokes like a missing one; their link survives."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    assert_problem(call(app, "GET", f"/devices/{t.theirs.device_id}", token), 404)
    assert_problem(call(app, "POST", f"/devices/{t.theirs.device_id}/revoke", token), 404)
    assert db_snapshot(db) == before


def test_a_new_device_model_gets_its_public_client_and_slot(app: Flask, db: Database) -> None:
    """POST /device-models → 201 the model with its client id; it is listed after."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id, "devices:write devices:read")
    body = {"name": "Printer P1", "kind": "appliance",
            "slot": {"name": "black_ink", "unit": "%", "capacity": 100, "sku": "AA"}}  # fmt: skip
    response = call(app, "POST", "/device-models", token, body=body, Idempotency_Key="m-1")
    assert response.status_code == 201, response.text
    model = response.get_json()
    assert model["client_id"] and model["skus"] == ["AA"]
    assert model["slots"] == [
        {"name": "black_ink", "unit": "%", "capacity": 100.0, "sku": "AA", "policy": "threshold"}
    ]
    assert model["conditions"] == []
    listed = call(app, "GET", "/device-models", token).get_json()["device_models"]
    assert model in listed
    replay = call(app, "POST", "/device-models", token, body=body, Idempotency_Key="m-1")
    assert replay.get_json() == model
    assert len(call(app, "GET", "/device-models", token).get_json()["device_models"]) == len(listed)


def test_a_printer_model_has_four_inks_and_reports_a_worn_head(app: Flask, db: Database) -> None:
    """`slots` takes several, `conditions` names what it reports and the part it suggests."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id, "devices:write devices:read")
    inks = [{"name": f"{ink}_ink", "unit": "%", "capacity": 100, "sku": "AA"}
            for ink in ("cyan", "magenta", "yellow")]  # fmt: skip
    body = {
        "name": "Printer P4", "kind": "appliance",
        "slots": [*inks, {"name": "black_ink", "unit": "%", "capacity": 100, "sku": "PODS",
                          "policy": "predictive"}],
        "conditions": [{"name": "head_worn", "kind": "flag", "message": "Replace the head.",
                        "sku": "AA"},
                       {"name": "error", "kind": "code", "message": "An error."}],
    }  # fmt: skip
    response = call(app, "POST", "/device-models", token, body=body, Idempotency_Key="m-4")
    assert response.status_code == 201, response.text
    model = response.get_json()
    assert [(s["name"], s["policy"]) for s in model["slots"]] == [
        ("cyan_ink", "threshold"), ("magenta_ink", "threshold"), ("yellow_ink", "threshold"),
        ("black_ink", "predictive"),
    ]  # fmt: skip
    assert model["skus"] == ["AA", "PODS"]
    assert model["conditions"] == [
        {"name": "head_worn", "kind": "flag", "threshold": None, "message": "Replace the head.",
         "sku": "AA"},
        {"name": "error", "kind": "code", "threshold": None, "message": "An error.", "sku": None},
    ]  # fmt: skip
    before = db_snapshot(db)
    twice = {**body, "name": "Twice", "conditions": [{"name": "cyan_ink", "kind": "flag",
                                                       "message": "x"}]}  # fmt: skip
    refused = call(app, "POST", "/device-models", token, body=twice, Idempotency_Key="m-5")
    assert refused.status_code == 400 and db_snapshot(db) == before


def test_a_device_model_with_another_stores_sku_is_400_and_not_made(
    app: Flask, db: Database
) -> None:
    """Unknown SKUs and unknown kinds are refused; nothing is created."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    assert_problem(call(app, "POST", "/device-models", token,
                        body={"name": "B", "kind": "button", "skus": ["NOPE"]}), 400)  # fmt: skip
    assert_problem(call(app, "POST", "/device-models", token,
                        body={"name": "B", "kind": "toaster"}), 400)  # fmt: skip
    assert db_snapshot(db) == before
