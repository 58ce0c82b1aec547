"""Predicted run-out: the domain function, the dashboard's device pages and the spoken answer."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from orders.queries.runout import predicted_runout
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, DeviceModel, SupplyReading
from tests.dash_helpers import build_tenants, signed_in
from tests.e2e.hub_fixtures import build_devices


def _series(db: Database, device_id: int, now: datetime, points: list[tuple[float, float]]) -> None:
    """Readings of `pods` at (days ago, level)."""
    with db.write() as session:
        session.add_all(
            SupplyReading(device_id=device_id, slot="pods", value=value, unit="count",
                          measured_at=now - timedelta(days=days_ago))
            for days_ago, value in points
        )  # fmt: skip


def _falling(start: float, per_day: float, days: int) -> list[tuple[float, float]]:
    return [(days - d / 2, start - per_day * d / 2) for d in range(days * 2 + 1)]


def test_a_steady_series_predicts_level_rate_and_date(db: Database) -> None:
    """4 pods a day down to 10: about 10 left, about 4 a day, empty in about 2.5 days."""
    devices = build_devices(db)
    now = utcnow()
    _series(db, devices.appliance_id, now, _falling(42, 4, 8))
    predicted = predicted_runout(db, devices.appliance_id, "pods", now)
    assert predicted is not None
    level, rate, runout_at = predicted
    assert level == pytest.approx(10, abs=0.5) and rate == pytest.approx(4, rel=0.05)
    assert runout_at is not None
    assert (runout_at - now) / timedelta(days=1) == pytest.approx(2.5, rel=0.1)


def test_without_readings_there_is_no_prediction(db: Database) -> None:
    """No readings, or no such slot: None."""
    devices = build_devices(db)
    assert predicted_runout(db, devices.appliance_id, "pods") is None
    assert predicted_runout(db, devices.appliance_id, "milk") is None
    assert predicted_runout(db, devices.world.device_id, "pods") is None  # a button has no slots


def test_one_reading_gives_a_level_but_no_date(db: Database) -> None:
    """Too little history for a rate: (level, None, None)."""
    devices = build_devices(db)
    now = utcnow()
    _series(db, devices.appliance_id, now, [(0, 30)])
    assert predicted_runout(db, devices.appliance_id, "pods", now) == (30, None, None)


def test_an_unused_slot_never_runs_out(db: Database) -> None:
    """The same level every day: a rate of about zero and no run-out date."""
    devices = build_devices(db)
    now = utcnow()
    _series(db, devices.appliance_id, now, [(d, 25.0) for d in range(8)])
    predicted = predicted_runout(db, devices.appliance_id, "pods", now)
    assert predicted is not None and predicted.level == pytest.approx(25)
    assert predicted.runout_at is None


def test_readings_beyond_the_look_back_window_are_ignored(db: Database) -> None:
    """Only readings 90+ days old: no prediction from stale data."""
    devices = build_devices(db)
    now = utcnow()
    _series(db, devices.appliance_id, now, [(95, 40), (92, 30), (90, 20)])
    assert predicted_runout(db, devices.appliance_id, "pods", now) is None


def _appliance_linked_days_ago(db: Database, t: object, days: float) -> int:
    """Turn the tenants' button into a coffee machine linked `days` ago; returns its id."""
    ours = t.ours  # type: ignore[attr-defined]
    with db.write() as session:
        appliance = session.scalars(
            select(DeviceModel.id).where(
                DeviceModel.store_id == ours.store_id, DeviceModel.kind == "appliance"
            )
        ).one()
        session.execute(
            update(Device).where(Device.id == ours.device_id).values(model_id=appliance)
        )
        session.execute(
            update(DeviceLink)
            .where(DeviceLink.id == ours.link_id)
            .values(created_at=utcnow() - timedelta(days=days))
        )
    return int(ours.device_id)


def test_the_shoppers_device_page_shows_the_predicted_run_out(app: Flask, db: Database) -> None:
    """My devices: "Predicted to run out around <day> UTC (in about 3 days, …)"."""
    t = build_tenants(db)
    device_id = _appliance_linked_days_ago(db, t, 10)
    now = utcnow()
    _series(db, device_id, now, _falling(44, 4, 8))
    page = signed_in(app, t.shopper_email).get("/my/devices").text
    day = now + timedelta(days=3)
    assert "Predicted to run out around" in page and "in about 3 days" in page
    assert f"{day:%a} {day.day} {day:%b}" in page


def test_the_merchants_device_page_shows_the_predicted_run_out(app: Flask, db: Database) -> None:
    """The store's device page names the run-out date too; no readings, no sentence."""
    t = build_tenants(db)
    device_id = _appliance_linked_days_ago(db, t, 10)
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/devices/{device_id}"
    assert "Predicted to run out" not in client.get(url).text
    _series(db, device_id, utcnow(), _falling(44, 4, 8))
    page = client.get(url).text
    assert "Predicted to run out around" in page and "at about 4 count a day" in page
