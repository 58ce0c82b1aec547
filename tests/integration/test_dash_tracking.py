"""The order pages show the parcel: expected day, delay, carrier timeline; the secret form."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from orders.services.carrier_hooks import carrier_secret
from orders.services.lifecycle import mark_shipped
from orders.services.tracking import record_tracking_event
from orders.store.db import Database, utcnow
from tests.dash_helpers import Tenants, build_tenants, form_post, signed_in
from tests.factories import db_snapshot


def _delayed(db: Database, t: Tenants) -> str:
    mark_shipped(db, t.order_id, t.ours.store_id, "1ZTRACK")
    now = utcnow()
    record_tracking_event(
        db, store_id=t.ours.store_id, order_id=t.order_id, external_id="e1",
        status="in_transit", occurred_at=now - timedelta(hours=3), description="Left hub",
    )  # fmt: skip
    late = (now + timedelta(days=6)).date()
    record_tracking_event(
        db, store_id=t.ours.store_id, order_id=t.order_id, external_id="e2",
        status="exception", occurred_at=now - timedelta(hours=1), estimated_delivery=late,
        description="Weather <delay>",
    )  # fmt: skip
    return late.strftime("%A, %B %d")


def test_the_merchants_order_page_shows_the_timeline_and_new_day(app: Flask, db: Database) -> None:
    """Scans newest first with their times, the carrier's day and the delay (escaped)."""
    t = build_tenants(db)
    day = _delayed(db, t)
    page = signed_in(app, t.merchant_email).get(f"/stores/{t.ours.store_id}/orders/{t.order_id}")
    assert page.status_code == 200
    text = page.text
    assert f"Expected {day}." in text and "Delayed: Weather &lt;delay&gt;" in text
    assert text.index("exception") < text.index("in transit") and "Left hub" in text
    timeline = text[text.index('<ol class="timeline"') : text.index("</ol>")]
    assert timeline.count("<li><time datetime=") == 2


def test_the_shoppers_order_page_shows_the_same_delivery(app: Flask, db: Database) -> None:
    """My order page: the expected day, the delay and the scans; another's order is 404."""
    t = build_tenants(db)
    day = _delayed(db, t)
    client = signed_in(app, t.shopper_email)
    text = client.get(f"/my/orders/{t.order_id}").text
    assert f"Expected {day}." in text and "Left hub" in text and "1ZTRACK" in text
    assert f"/my/orders/{t.order_id}" in client.get("/my/orders").text
    assert client.get(f"/my/orders/{t.their_order_id}").status_code == 404


def test_a_placed_order_shows_the_promised_day_and_no_scans(app: Flask, db: Database) -> None:
    """Before any carrier scan the shopper sees the store's promise."""
    t = build_tenants(db)
    text = signed_in(app, t.shopper_email).get(f"/my/orders/{t.order_id}").text
    promised = (utcnow() + timedelta(days=2)).strftime("%B")
    assert "Expected " in text and promised in text and "No carrier scans yet." in text


def test_the_merchant_sets_the_easypost_secret_and_a_short_one_changes_nothing(
    app: Flask, db: Database
) -> None:
    """Integrations page: a secret of 16+ characters is saved; a short one is a 400."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/integrations"
    assert "/hooks/carriers/easypost/" in client.get(url).text
    before = db_snapshot(db)
    assert form_post(client, f"{url}/carriers/easypost", {"secret": "short"}).status_code == 400
    assert db_snapshot(db) == before
    form_post(client, f"{url}/carriers/easypost", {"secret": "a-long-enough-secret-1"})
    assert carrier_secret(db, t.ours.store_id, "easypost") == "a-long-enough-secret-1"
    assert carrier_secret(db, t.theirs.store_id, "easypost") is None
