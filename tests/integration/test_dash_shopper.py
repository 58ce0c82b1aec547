"""A shopper's pages: devices with supply charts, pause/unlink, orders, voice PIN, privacy."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from auth.model import Account, Token
from auth.principal import DEVICE_SCOPES, InvalidToken
from auth.tokens import issue_token, verify_access_token
from orders.domain.errors import OrderRefused
from orders.services.consent import pin_matches as check_voice_pin
from orders.services.devices import LinkRules
from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, Order, Shopper, SupplyReading
from tests.dash_helpers import add_readings, build_tenants, form_post, signed_in
from tests.factories import db_snapshot


def _device_token(db: Database, link_id: int) -> str:
    with db.write() as session:
        link = session.get(DeviceLink, link_id)
        assert link is not None
        issued = issue_token(
            session, client_id="c", kind="device", scope=DEVICE_SCOPES,
            shopper_id=link.shopper_id, store_id=link.store_id, device_id=link.device_id,
            link_id=link.id,
        )  # fmt: skip
        return issued.access_token


def test_my_devices_draws_supply_since_the_link_as_inline_svg(app: Flask, db: Database) -> None:
    """The chart is an SVG of readings taken since the link; older readings are not shown."""
    t = build_tenants(db)
    with db.read() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        linked_at = link.created_at
    # The world's button has no slots: give the device an appliance's slot by model swap.
    with db.write() as session:
        from orders.store.model import Device, DeviceModel

        appliance = session.scalar(
            select(DeviceModel).where(
                DeviceModel.store_id == t.ours.store_id, DeviceModel.kind == "appliance"
            )
        )
        device = session.get(Device, t.ours.device_id)
        assert appliance is not None and device is not None
        device.model_id = appliance.id
    add_readings(db, t.ours.device_id, [49.0], start=linked_at - timedelta(days=3))
    add_readings(db, t.ours.device_id, [40.0, 30.0, 20.0, 8.0], start=linked_at)
    page = signed_in(app, t.shopper_email).get("/my/devices").text
    assert "<svg" in page and "<polyline" in page and 'role="img"' in page
    assert "pods: 8 of 50 count (16%), from 40 over the last 4 readings, low." in page
    assert "49" not in page.split("<polyline", 1)[1].split("</svg>", 1)[0]


def test_pause_then_resume_controls_whether_a_press_orders(app: Flask, db: Database) -> None:
    """Pausing refuses presses with `paused`; resuming lets them through again."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    response = form_post(client, f"/my/devices/{t.ours.device_id}/pause")
    assert response.status_code == 302
    assert "paused" in client.get("/my/devices").text
    with pytest.raises(OrderRefused) as refused:
        press(db, t.ours.device_id, 2)
    assert refused.value.reason == "paused"
    form_post(client, f"/my/devices/{t.ours.device_id}/resume")
    with db.read() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None and link.paused is False


def test_unlink_ends_the_link_and_revokes_its_tokens(app: Flask, db: Database) -> None:
    """After unlinking, the device's token is refused and the device leaves the list."""
    t = build_tenants(db)
    token = _device_token(db, t.ours.link_id)
    assert verify_access_token(db, token).device_id == t.ours.device_id
    client = signed_in(app, t.shopper_email)
    form_post(client, f"/my/devices/{t.ours.device_id}/unlink")
    with db.read() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        row = session.scalar(select(Token).where(Token.link_id == t.ours.link_id))
        assert link is not None and link.status == "unlinked"
        assert row is not None and row.revoked_at is not None
    with pytest.raises(InvalidToken):
        verify_access_token(db, token)
    assert f"device-{t.ours.device_id}" not in client.get("/my/devices").text


def test_a_post_without_csrf_changes_nothing(app: Flask, db: Database) -> None:
    """A cross-site form post (no CSRF token) is turned away and the database is unchanged."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    client.post(f"/my/devices/{t.ours.device_id}/unlink")
    client.post(f"/my/orders/{t.order_id}/cancel")
    assert db_snapshot(db) == before


def test_cancel_inside_the_window_and_not_after(app: Flask, db: Database) -> None:
    """Cancel asks first, works while the window is open; a closed window leaves it placed."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    assert f'href="/my/orders/{t.order_id}/cancel">Cancel…</a>' in client.get("/my/orders").text
    question = client.get(f"/my/orders/{t.order_id}/cancel").text
    assert "Yes, cancel the order</button>" in question and "No, keep the order" in question
    with db.read() as session:
        asked = session.get(Order, t.order_id)
        assert asked is not None and asked.status == "placed"  # asking changes nothing
    form_post(client, f"/my/orders/{t.order_id}/cancel")
    with db.read() as session:
        order = session.get(Order, t.order_id)
        assert order is not None and order.status == "cancelled"
    old = place_order(
        db,
        OrderRequest(t.ours.store_id, t.ours.shopper_id, "web", (LineRequest("AA", 1),)),
        now=utcnow() - timedelta(hours=2),
    ).order
    before = db_snapshot(db)
    assert client.get(f"/my/orders/{old.id}/cancel").status_code == 409  # no question either
    response = form_post(client, f"/my/orders/{old.id}/cancel")
    assert response.status_code == 302
    assert "cancel window has closed" in client.get("/my/orders").text
    assert db_snapshot(db) == before


def test_pending_orders_can_be_approved_or_rejected(app: Flask, db: Database) -> None:
    """An order waiting for approval gets Approve/Reject buttons that do what they say."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    with db.write() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        link.approval_required = True
    form_post(client, f"/my/orders/{t.order_id}/cancel")
    first = press(db, t.ours.device_id, 2).order
    assert first.status == "pending_approval"
    assert "Approve</button>" in client.get("/my/orders").text
    form_post(client, f"/my/orders/{first.id}/approve")
    form_post(client, f"/my/orders/{first.id}/cancel")
    second = press(db, t.ours.device_id, 3).order
    form_post(client, f"/my/orders/{second.id}/reject")
    with db.read() as session:
        statuses = {o.id: o.status for o in session.scalars(select(Order))}
    assert statuses[first.id] == "cancelled" and statuses[second.id] == "cancelled"


def test_orders_paginate_without_gaps_or_repeats(app: Flask, db: Database) -> None:
    """30 orders make a page of 25 and a page of 5, with a Next link carrying the cursor."""
    t = build_tenants(db)
    start = utcnow() - timedelta(hours=1)
    for i in range(29):
        request = OrderRequest(t.ours.store_id, t.ours.shopper_id, "web", (LineRequest("AA", 1),))
        place_order(db, request, now=start + timedelta(seconds=i // 3))  # ties on purpose
    client = signed_in(app, t.shopper_email)
    first = client.get("/my/orders").text
    assert first.count('<tr id="order-') == 25 and 'rel="next"' in first
    next_url = first.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(next_url).text
    assert second.count('<tr id="order-') == 5 and 'rel="next"' not in second
    seen = [chunk.split('"', 1)[0] for chunk in (first + second).split('<tr id="order-')[1:]]
    assert len(set(seen)) == 30
    assert client.get("/my/orders?cursor=garbage").status_code == 400


def test_voice_pin_is_stored_argon2_hashed_and_can_be_cleared(app: Flask, db: Database) -> None:
    """A 4-digit PIN is saved as an argon2 hash; a bad PIN changes nothing; clearing removes it."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    bad = form_post(client, "/my/voice", {"form": "pin", "pin": "12a4"})
    assert bad.status_code == 400 and "Exactly 4 digits" in bad.text
    assert 'aria-describedby="pin-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert db_snapshot(db) == before
    form_post(client, "/my/voice", {"form": "pin", "pin": "4821"})
    form_post(client, "/my/voice", {"form": "threshold", "threshold": "25.50"})
    with db.read() as session:
        shopper = session.get(Shopper, t.ours.shopper_id)
        assert shopper is not None and shopper.voice_pin_hash is not None
        assert (
            shopper.voice_pin_hash.startswith("$argon2id$") and "4821" not in shopper.voice_pin_hash
        )
        assert check_voice_pin(shopper.voice_pin_hash, "4821")
        assert not check_voice_pin(shopper.voice_pin_hash, "4820")
        assert shopper.voice_pin_threshold_minor == 2550
    assert "A voice PIN is set." in client.get("/my/voice").text
    form_post(client, "/my/voice/pin/clear")
    form_post(client, "/my/voice", {"form": "threshold", "threshold": ""})
    with db.read() as session:
        shopper = session.get(Shopper, t.ours.shopper_id)
        assert shopper is not None
        assert shopper.voice_pin_hash is None and shopper.voice_pin_threshold_minor is None


def test_export_holds_my_data_and_nobody_elses(app: Flask, db: Database) -> None:
    """The JSON export names my email, devices and orders, and none of another shopper's."""
    t = build_tenants(db)
    response = signed_in(app, t.shopper_email).get("/my/privacy/export.json")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.text)
    assert data["account"]["email"] == t.shopper_email
    assert [o["id"] for o in data["orders"]] == [t.order_id]
    assert [d["device_id"] for d in data["devices"]] == [t.ours.device_id]
    assert t.their_order_id not in response.text


def test_deleting_my_account_revokes_devices_and_anonymises_orders(
    app: Flask, db: Database
) -> None:
    """Delete: tokens die, links end, name/email/PIN/readings go, orders stay with the store."""
    t = build_tenants(db)
    token = _device_token(db, t.ours.link_id)
    add_readings(db, t.ours.device_id, [10.0, 9.0], start=utcnow())
    client = signed_in(app, t.shopper_email)
    form_post(client, "/my/voice", {"form": "pin", "pin": "1234"})
    refused = form_post(client, "/my/privacy", {"confirm": "delete"})
    assert refused.status_code == 400
    response = form_post(client, "/my/privacy", {"confirm": "DELETE"})
    assert response.status_code == 302
    with pytest.raises(InvalidToken):
        verify_access_token(db, token)
    with db.read() as session:
        shopper = session.get(Shopper, t.ours.shopper_id)
        assert shopper is not None and shopper.deleted_at is not None
        assert (shopper.name, shopper.email, shopper.voice_pin_hash) == (
            "Deleted shopper", None, None,
        )  # fmt: skip
        assert session.scalar(select(Account).where(Account.email == t.shopper_email)) is None
        order = session.get(Order, t.order_id)
        assert order is not None and order.shopper_id == t.ours.shopper_id
        assert session.scalars(
            select(DeviceLink).where(DeviceLink.shopper_id == t.ours.shopper_id,
                                     DeviceLink.status == "active")
        ).all() == []  # fmt: skip
        assert session.scalars(select(SupplyReading)).all() == []
    assert client.get("/my/devices").status_code == 302  # signed out


def test_link_rules_survive_the_pages(db: Database) -> None:
    """Pausing through the page keeps the shopper's other rules (caps, quantity) as they were."""
    from orders.services.devices import update_link
    from orders.services.shopper import set_paused

    t = build_tenants(db)
    with db.write() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        update_link(session, link, LinkRules(quantity=3, per_order_cap_minor=9000))
    set_paused(db, t.ours.shopper_id, t.ours.device_id, True)
    with db.read() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        assert (link.quantity, link.per_order_cap_minor, link.paused) == (3, 9000, True)
