"""A device's serial is no secret: knowing it never takes the device from its owner (#14 item 2)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from auth.link_attempts import attempts_on_my_devices
from auth.model import DeviceUnitSecret, LinkAttempt
from auth.principal import InvalidToken
from auth.tokens import verify_access_token
from orders.queries.supplies import supply_level
from orders.services.devices import active_link
from orders.services.ordering import press
from orders.services.telemetry import SlotLevel, record_telemetry
from orders.store.db import Database
from orders.store.model import DeviceLink, DeviceModel
from tests.auth_fixtures import OAuthWorld, build_oauth_world, login_as
from tests.dash_helpers import form_post
from tests.device_link_helpers import (
    approve,
    forget_polls,
    link_over_http,
    poll,
    shopper_account,
    start,
)
from tests.factories import db_snapshot


@pytest.fixture
def o(db: Database) -> OAuthWorld:
    """Clients of every kind, a shopper account (the owner) and a merchant account."""
    return build_oauth_world(db)


def _attacker(app: Flask, db: Database) -> tuple[FlaskClient, int]:
    account_id = shopper_account(db, "mallory@example.test")
    browser = app.test_client()
    login_as(browser, account_id)
    return browser, account_id


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_stranger_approving_a_linked_devices_serial_is_refused_and_the_owner_keeps_it(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Fresh account + public button client id + the victim's serial: refused, victim intact."""
    victim = link_over_http(app, db, o.shopper_account_id, o.button, "VICTIM-1")
    owner = verify_access_token(db, victim["access_token"])
    device = app.test_client()
    stolen = start(device, o.button, "VICTIM-1")
    browser, attacker_id = _attacker(app, db)
    before = db_snapshot(db)
    refused = approve(browser, stolen["user_code"], product="PODS")
    assert refused.status_code == 409
    assert "already linked to another account" in refused.text
    after = db_snapshot(db)
    assert after.pop("device_link_attempts") != before.pop("device_link_attempts")
    # The owner is told (a notice); nothing else changed.
    assert [row[2] for row in after.pop("notifications")] == ["link_attempted"]
    assert before.pop("notifications") == []
    assert after == before
    forget_polls(db)
    assert poll(device, o.button, stolen["device_code"]).get_json()["error"] == (
        "authorization_pending"
    )
    still = verify_access_token(db, victim["access_token"], "orders:read")
    assert (still.link_id, still.shopper_id) == (owner.link_id, owner.shopper_id)
    with db.read() as session:
        (attempt,) = session.scalars(select(LinkAttempt)).all()
        assert (attempt.account_id, attempt.link_id, attempt.serial) == (
            attacker_id, owner.link_id, "VICTIM-1",
        )  # fmt: skip


def test_the_owner_sees_the_refused_attempt_on_my_devices(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """The device's card on /my/devices says someone else tried to link it."""
    link_over_http(app, db, o.shopper_account_id, o.button, "VICTIM-2")
    stolen = start(app.test_client(), o.button, "VICTIM-2")
    browser, _ = _attacker(app, db)
    assert approve(browser, stolen["user_code"], product="PODS").status_code == 409
    assert approve(browser, stolen["user_code"], product="PODS").status_code == 409
    owner = app.test_client()
    login_as(owner, o.shopper_account_id)
    page = owner.get("/my/devices").text
    assert page.count("Another account tried to link this Button") == 1
    assert "mallory" not in page
    assert "Another account tried" not in browser.get("/my/devices").text


def test_the_same_shopper_can_link_their_device_again(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Re-linking by the owner works; the first link's token dies with it."""
    first = link_over_http(app, db, o.shopper_account_id, o.button, "MINE-1")
    second = link_over_http(app, db, o.shopper_account_id, o.button, "MINE-1")
    with pytest.raises(InvalidToken):
        verify_access_token(db, first["access_token"])
    assert verify_access_token(db, second["access_token"]).device_id == first["device_id"]


def test_after_the_owner_unlinks_another_shopper_can_link_the_device(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """A resale the owner agreed to: unlink on /my/devices, then the buyer links it."""
    first = link_over_http(app, db, o.shopper_account_id, o.button, "SOLD-1")
    owner = app.test_client()
    login_as(owner, o.shopper_account_id)
    unlinked = form_post(owner, f"/my/devices/{first['device_id']}/unlink")
    assert unlinked.status_code == 302
    buyer = shopper_account(db, "buyer@example.test")
    second = link_over_http(app, db, buyer, o.button, "SOLD-1")
    assert verify_access_token(db, second["access_token"]).device_id == first["device_id"]


def test_a_released_and_resold_device_shows_nothing_of_its_previous_owner(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Merchant release, then the buyer's device token reads only the buyer's orders and levels."""
    first = link_over_http(app, db, o.shopper_account_id, o.button, "RESOLD-1")
    device_id = first["device_id"]
    old_order = press(db, device_id, 1).order
    merchant = app.test_client()
    login_as(merchant, o.merchant_account_id)
    page = merchant.get(f"/stores/{o.world.store_id}/devices/{device_id}").text
    assert "Revoke this device…" in page  # a link to the question page
    released = form_post(merchant, f"/stores/{o.world.store_id}/devices/{device_id}/revoke")
    assert released.status_code == 302
    with pytest.raises(InvalidToken):
        verify_access_token(db, first["access_token"])
    buyer = shopper_account(db, "buyer@example.test")
    second = link_over_http(app, db, buyer, o.button, "RESOLD-1")
    assert second["device_id"] == device_id
    reader = app.test_client()
    listed = reader.get("/api/v1/orders", headers=_bearer(second["access_token"]))
    assert listed.status_code == 200 and listed.get_json()["orders"] == []
    twin = reader.get(
        f"/api/v1/device/orders/{old_order.id}", headers=_bearer(second["access_token"])
    )
    assert twin.status_code == 404
    assert twin.mimetype == "application/problem+json"
    # The buyer's first press: seq 1 again, and the previous owner's order still open.
    pressed = press(db, device_id, 1)
    assert pressed.outcome == "placed"
    new_order = pressed.order
    assert new_order.id != old_order.id
    mine = reader.get("/api/v1/orders", headers=_bearer(second["access_token"])).get_json()
    assert [order["id"] for order in mine["orders"]] == [new_order.id]
    own = reader.get(
        f"/api/v1/device/orders/{new_order.id}", headers=_bearer(second["access_token"])
    )
    assert own.status_code == 200 and own.get_json()["id"] == new_order.id


def test_a_resold_appliance_shows_its_buyer_none_of_the_previous_readings(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Supply levels (voice) and the reorder policy see only readings of the current link."""
    first = link_over_http(app, db, o.shopper_account_id, o.appliance, "FRIDGE-1")
    device_id = first["device_id"]
    record_telemetry(db, device_id, [{"n": "pods", "u": "count", "v": 30}])
    assert supply_level(db, _shopper_of(db, o.shopper_account_id), o.world.store_id, None)
    with db.write() as session:
        link = active_link(session, device_id)
        assert link is not None
        link.status, link.unlinked_at = "unlinked", link.created_at
    buyer = shopper_account(db, "buyer@example.test")
    link_over_http(app, db, buyer, o.appliance, "FRIDGE-1")
    assert supply_level(db, _shopper_of(db, buyer), o.world.store_id, None) is None
    record_telemetry(db, device_id, [{"n": "pods", "u": "count", "v": 45}])
    level = supply_level(db, _shopper_of(db, buyer), o.world.store_id, None)
    assert level is not None and level.level == 45


def test_the_reorder_policy_of_a_resold_appliance_sees_only_its_new_links_readings(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """The buyer's first report: the policy's history holds that report alone."""
    first = link_over_http(app, db, o.shopper_account_id, o.appliance, "FRIDGE-2")
    device_id = first["device_id"]
    for level in (40, 35, 30):
        record_telemetry(db, device_id, [{"n": "pods", "u": "count", "v": level}])
    with db.write() as session:
        link = active_link(session, device_id)
        assert link is not None
        link.status, link.unlinked_at = "unlinked", link.created_at
    link_over_http(app, db, shopper_account(db, "buyer@example.test"), o.appliance, "FRIDGE-2")
    seen: list[SlotLevel] = []

    def watch(state: SlotLevel) -> bool:
        seen.append(state)
        return False

    record_telemetry(db, device_id, [{"n": "pods", "u": "count", "v": 48}], policy=watch)
    assert [value for _at, value in seen[0].history] == [48]


def _shopper_of(db: Database, account_id: int) -> int:
    from auth.model import Account

    with db.read() as session:
        account = session.get(Account, account_id)
        assert account is not None and account.shopper_id is not None
        return account.shopper_id


def test_attempts_are_shown_only_to_the_devices_current_owner(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Another shopper's attempts list is empty; the owner's names the device."""
    first = link_over_http(app, db, o.shopper_account_id, o.button, "VICTIM-3")
    stolen = start(app.test_client(), o.button, "VICTIM-3")
    browser, attacker_id = _attacker(app, db)
    approve(browser, stolen["user_code"], product="PODS")
    owner_shopper = _shopper_of(db, o.shopper_account_id)
    seen = attempts_on_my_devices(db, owner_shopper)
    assert [a.serial for a in seen[first["device_id"]]] == ["VICTIM-3"]
    assert attempts_on_my_devices(db, _shopper_of(db, attacker_id)) == {}


def _require_secret(db: Database, o: OAuthWorld) -> int:
    with db.read() as session:
        model = session.scalars(select(DeviceModel).where(DeviceModel.client_id == o.button)).one()
        return model.id


def test_a_model_that_requires_unit_secrets_links_only_a_unit_that_proves_possession(
    app: Flask, db: Database, o: OAuthWorld
) -> None:
    """Imported on the model page (stored hashed); no or a wrong secret is invalid_client."""
    model_id = _require_secret(db, o)
    merchant = app.test_client()
    login_as(merchant, o.merchant_account_id)
    secret = "s3cret-unit-0001-abcdef"
    saved = form_post(
        merchant,
        f"/stores/{o.world.store_id}/models/{model_id}/unit-secrets",
        {"requires_unit_secret": "y", "unit_secrets": f"# serial,secret\nUNIT-1,{secret}\n"},
    )
    assert saved.status_code == 302
    assert "1 unit(s) on file" in merchant.get(f"/stores/{o.world.store_id}/models/{model_id}").text
    with db.read() as session:
        (row,) = session.scalars(select(DeviceUnitSecret)).all()
        assert row.serial == "UNIT-1" and secret not in row.secret_hash
    device = app.test_client()
    before = db_snapshot(db)
    for extra in ({}, {"unit_secret": "wrong-secret-wrong-secret"}):
        refused = device.post(
            "/oauth/device_authorization", data={"client_id": o.button, "serial": "UNIT-1", **extra}
        )
        assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    other = device.post(
        "/oauth/device_authorization",
        data={"client_id": o.button, "serial": "UNIT-2", "unit_secret": secret},
    )
    assert other.status_code == 401
    assert db_snapshot(db) == before
    started = start(device, o.button, "UNIT-1", unit_secret=secret)
    assert started["user_code"]


def test_a_bad_unit_secret_import_changes_nothing(app: Flask, db: Database, o: OAuthWorld) -> None:
    """A short secret or a line without a comma: an error message, nothing stored or turned on."""
    model_id = _require_secret(db, o)
    merchant = app.test_client()
    login_as(merchant, o.merchant_account_id)
    before = db_snapshot(db)
    for text in ("UNIT-1,short", "UNIT-1 no comma here at all"):
        response = form_post(
            merchant,
            f"/stores/{o.world.store_id}/models/{model_id}/unit-secrets",
            {"requires_unit_secret": "y", "unit_secrets": text},
        )
        assert response.status_code == 302
    assert db_snapshot(db) == before


def test_two_links_for_one_device_never_coexist(db: Database, o: OAuthWorld) -> None:
    """Whatever happened above, the database holds at most one active link per device."""
    with db.read() as session:
        links = session.scalars(select(DeviceLink).where(DeviceLink.status == "active")).all()
        assert len({link.device_id for link in links}) == len(links)
