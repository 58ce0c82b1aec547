"""The shopper's notices: raised once from the outbox as the worker publishes it (or by the
change itself), listed with a badge, read/unread, e-mail choices, and signed e-mail links."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.link_attempts import record_attempt
from auth.model import Account
from dashboard.notice_links import NoticeLinks
from orders.services.consent import check_voice_pin, set_voice_pin
from orders.services.devices import LinkRules, update_link
from orders.services.lifecycle import mark_delivered, mark_shipped
from orders.services.low_alerts import scan_low_levels
from orders.services.notifications import set_email_choices
from orders.services.ordering import press
from orders.services.tracking import record_tracking_event
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, Notification, Order, OrderEvent, WebhookAlert
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import db_snapshot, publish_outbox


def _publish(db: Database) -> None:
    """One pass of the worker: the outbox is published, notices are raised."""
    publish_outbox(db)


def _notices(db: Database) -> list[tuple[int, str, str | None, str]]:
    with db.read() as session:
        return [
            (n.shopper_id, n.kind, n.order_id, n.email_status)
            for n in session.scalars(select(Notification).order_by(Notification.id))
        ]


def test_an_order_placed_gives_one_notice_with_its_cancel_time(app: Flask, db: Database) -> None:
    """Each shopper hears of their own order once, however often the worker passes."""
    t = build_tenants(db)
    _publish(db)
    _publish(db)
    assert _notices(db) == [
        (t.ours.shopper_id, "order_placed", t.order_id, "pending"),
        (t.theirs.shopper_id, "order_placed", t.their_order_id, "pending"),
    ]
    page = signed_in(app, t.shopper_email).get("/my/notifications").text
    assert "Order placed: 1 × Coffee pods" in page and "You can cancel it until" in page
    assert t.their_order_id not in page


def test_the_badge_counts_unread_notices_until_read(app: Flask, db: Database) -> None:
    """The nav shows 1 unread; marking it read removes the badge; another's notice can't
    be marked by me."""
    t = build_tenants(db)
    _publish(db)
    client = signed_in(app, t.shopper_email)
    assert 'id="unread-badge">1<' in client.get("/my/devices").text
    with db.read() as session:
        ids = session.scalars(select(Notification.id).order_by(Notification.id))
        mine, theirs = list(ids)
    assert form_post(client, f"/my/notifications/{theirs}/read").status_code == 404
    assert form_post(client, f"/my/notifications/{mine}/read").status_code == 302
    assert "unread-badge" not in client.get("/my/devices").text
    with db.read() as session:
        assert session.get(Notification, theirs).read_at is None  # type: ignore[union-attr]


def test_approval_shipping_delay_and_delivery_each_notify(db: Database) -> None:
    """pending_approval → approval_needed; ship → order_shipped; deliver → order_delivered."""
    t = build_tenants(db)
    with db.write() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        update_link(session, link, LinkRules(approval_required=True))
    mark_shipped(db, t.order_id, t.ours.store_id, "TRACK-1", carrier="DHL")
    record_tracking_event(
        db, store_id=t.ours.store_id, order_id=t.order_id, external_id="scan-1",
        status="exception", occurred_at=utcnow(),
        estimated_delivery=(utcnow() + timedelta(days=9)).date(), description="Weather delay",
    )  # fmt: skip
    mark_delivered(db, t.order_id, t.ours.store_id)
    waiting = press(db, t.ours.device_id, 2).order
    _publish(db)
    ours = [(k, order) for shopper, k, order, _ in _notices(db) if shopper == t.ours.shopper_id]
    assert ours == [
        ("order_placed", t.order_id),
        ("order_shipped", t.order_id),
        ("order_delayed", t.order_id),
        ("order_delivered", t.order_id),
        ("approval_needed", waiting.id),
    ]


def _scan_until(db: Database, done: Callable[[Session], bool]) -> None:
    """The worker's low-level scan until `done` (on PostgreSQL another run may hold its lock)."""
    for _ in range(200):
        db.run_write(lambda session: scan_low_levels(session, utcnow()))
        with db.read() as session:
            if done(session):
                return
        time.sleep(0.05)
    raise AssertionError("the scan never ran")


def test_supply_low_notifies_only_on_an_alert_only_link(db: Database) -> None:
    """A low level on an alert-only link becomes one `supply_low` notice for its shopper."""
    from orders.services.telemetry import record_telemetry
    from tests.e2e.hub_fixtures import build_devices

    devices = build_devices(db)
    with db.write() as session:
        link = session.scalar(
            select(DeviceLink).where(DeviceLink.device_id == devices.appliance_id)
        )
        assert link is not None
        link.policy = "alert"
    _scan_until(db, lambda session: session.scalar(select(WebhookAlert.id)) is not None)
    record_telemetry(db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 2}])
    _scan_until(db, lambda session: session.scalar(select(OrderEvent.id)) is not None)
    _publish(db)
    kinds = [kind for _, kind, _, _ in _notices(db)]
    assert kinds == ["supply_low"]


def test_a_refused_link_attempt_and_a_voice_lock_notify_the_owner(db: Database) -> None:
    """Both are raised in the transaction of what happened, not from the store's events."""
    t = build_tenants(db)
    now = utcnow()
    with db.write() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        other = session.scalar(select(Account.id).where(Account.email == t.other_shopper_email))
        assert link is not None and other is not None
        record_attempt(session, link, other, "client", "SN-1", now)
        record_attempt(session, link, other, "client", "SN-1", now)  # within the hour: once
    set_voice_pin(db, t.ours.shopper_id, "1234")
    for _ in range(3):
        check_voice_pin(db, t.ours.shopper_id, "0000")
    assert [(s, k) for s, k, _, _ in _notices(db)] == [
        (t.ours.shopper_id, "link_attempted"),
        (t.ours.shopper_id, "voice_locked"),
    ]


def test_email_choices_decide_what_is_queued_for_e_mail(app: Flask, db: Database) -> None:
    """Unticked kinds still show in the app but are not e-mailed; the page keeps the choice."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    response = form_post(client, "/my/notifications/settings", {"kinds": ["order_shipped"]})
    assert response.status_code == 302
    _publish(db)
    assert _notices(db)[0][1:] == ("order_placed", t.order_id, "none")
    page = client.get("/my/notifications/settings").text
    assert re.search(r'checked[^>]*value="order_shipped"|value="order_shipped"[^>]*checked', page)
    assert not re.search(r'checked[^>]*value="order_placed"|value="order_placed"[^>]*checked', page)


def test_an_unknown_kind_is_refused_and_changes_nothing(app: Flask, db: Database) -> None:
    """A forged choice: 400 on the page; the service refuses it too."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    response = form_post(client, "/my/notifications/settings", {"kinds": ["everything"]})
    assert response.status_code == 400
    assert db_snapshot(db) == before
    try:
        set_email_choices(db, t.ours.shopper_id, ["everything"])
    except Exception as exc:  # noqa: BLE001 - the reason is what matters
        assert getattr(exc, "reason", "") == "unknown_notice_kind"
    else:
        raise AssertionError("an unknown kind was accepted")


def _links(app: Flask) -> NoticeLinks:
    return NoticeLinks(app.config["SECRET_KEY"], "http://restock.test")


def test_a_signed_cancel_link_cancels_after_sign_in_and_one_click(app: Flask, db: Database) -> None:
    """Not signed in: the login page first. Signed in: a page with one button; POST cancels."""
    t = build_tenants(db)
    with db.read() as session:
        order = session.get(Order, t.order_id)
        assert order is not None
        until = order.cancel_until
    token = _links(app).sign(t.order_id, "cancel", t.ours.shopper_id, until)
    url = f"/my/notifications/act/{token}"
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    client = signed_in(app, t.shopper_email)
    page = client.get(url)
    assert page.status_code == 200 and "Cancel the order" in page.text
    assert form_post(client, url).status_code == 302
    with db.read() as session:
        assert session.get(Order, t.order_id).status == "cancelled"  # type: ignore[union-attr]


def test_an_expired_forged_or_foreign_link_does_nothing(app: Flask, db: Database) -> None:
    """404 for each, and the order stays as it was."""
    t = build_tenants(db)
    links = _links(app)
    now = utcnow()
    expired = links.sign(t.order_id, "cancel", t.ours.shopper_id, now - timedelta(seconds=1))
    foreign = links.sign(t.order_id, "cancel", t.theirs.shopper_id, now + timedelta(hours=1))
    forged = NoticeLinks("another key", "").sign(
        t.order_id, "cancel", t.ours.shopper_id, now + timedelta(hours=1)
    )
    client = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    for token in (expired, foreign, forged, "not-a-token"):
        assert client.get(f"/my/notifications/act/{token}").status_code == 404
        assert form_post(client, f"/my/notifications/act/{token}").status_code == 404
    assert db_snapshot(db) == before


def test_an_approve_link_approves_a_waiting_order(app: Flask, db: Database) -> None:
    """The e-mail's approve link, after sign-in and one click: the order is placed."""
    t = build_tenants(db)
    with db.write() as session:
        session.get(Order, t.order_id).status = "delivered"  # type: ignore[union-attr]
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        update_link(session, link, LinkRules(approval_required=True))
    waiting = press(db, t.ours.device_id, 2).order
    token = _links(app).sign(waiting.id, "approve", t.ours.shopper_id, utcnow() + timedelta(days=1))
    client = signed_in(app, t.shopper_email)
    assert form_post(client, f"/my/notifications/act/{token}").status_code == 302
    with db.read() as session:
        assert session.get(Order, waiting.id).status == "placed"  # type: ignore[union-attr]


def test_deleting_the_account_takes_notices_names_and_rule_history(
    app: Flask, db: Database
) -> None:
    """What the shopper wrote or was told is theirs: it goes with the account; the export
    had it before."""
    from orders.domain.link_rules import Rules
    from orders.services.link_rules import change_rules
    from orders.services.privacy import export_shopper, forget_shopper
    from orders.store.model import LinkRuleChange

    t = build_tenants(db)
    _publish(db)
    rules = Rules(
        name="Hall button", product_sku="PODS", quantity=2, approval_required=False,
        per_order_cap_minor=None, monthly_cap_minor=None, policy="threshold",
        reorder_point=None, order_up_to=None, risk=0.003, paused=False, paused_until=None,
    )  # fmt: skip
    change_rules(db, t.ours.shopper_id, t.ours.device_id, rules)
    with db.read() as session:
        exported = export_shopper(session, t.ours.shopper_id)
    assert [n["kind"] for n in exported["notifications"]] == ["order_placed"]
    assert exported["devices"][0]["name"] == "Hall button"
    assert {c["field"] for c in exported["devices"][0]["link"]["rule_changes"]} == {
        "name",
        "quantity",
    }
    with db.write() as session:
        forget_shopper(session, t.ours.shopper_id)
    with db.read() as session:
        assert session.scalars(select(LinkRuleChange)).all() == []
        left = session.scalars(select(Notification.shopper_id)).all()
        names = session.scalars(select(DeviceLink.name)).all()
    assert left == [t.theirs.shopper_id] and set(names) == {None}
