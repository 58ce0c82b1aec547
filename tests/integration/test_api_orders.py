"""Merchant REST API, orders: list with filters and paging, get, ship, deliver, cancel."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import build_tenants
from tests.factories import db_snapshot


def test_the_store_lists_its_orders_by_status_device_and_time_a_page_at_a_time(
    app: Flask, db: Database
) -> None:
    """Filters narrow the list; `next_before` and the Link header page through it."""
    t = build_tenants(db)
    start = utcnow() - timedelta(hours=2)
    made = []
    for i in range(3):
        request = OrderRequest(t.ours.store_id, t.ours.shopper_id, "api", (LineRequest("AA", 1),))
        made.append(place_order(db, request, now=start + timedelta(minutes=i)).order.id)
    token = merchant_token(db, t.ours.store_id, "orders:read")

    page = call(app, "GET", "/orders?limit=2", token)
    assert page.status_code == 200
    assert [o["id"] for o in page.get_json()["orders"]] == [t.order_id, made[2]]
    assert 'rel="next"' in page.headers["Link"]
    rest = call(app, "GET", f"/orders?limit=2&before={page.get_json()['next_before']}", token)
    assert [o["id"] for o in rest.get_json()["orders"]] == [made[1], made[0]]
    assert rest.get_json()["next_before"] is None

    by_device = call(app, "GET", f"/orders?device={t.ours.device_id}", token).get_json()
    assert [o["id"] for o in by_device["orders"]] == [t.order_id]
    since = (start + timedelta(minutes=1, seconds=30)).isoformat().replace("+00:00", "Z")
    recent = call(app, "GET", f"/orders?since={since}", token).get_json()
    assert [o["id"] for o in recent["orders"]] == [t.order_id, made[2]]
    assert call(app, "GET", "/orders?status=shipped", token).get_json()["orders"] == []
    assert t.their_order_id not in call(app, "GET", "/orders?limit=100", token).text


def test_an_order_reads_as_the_resource_the_contract_names(app: Flask, db: Database) -> None:
    """GET /orders/{id}: id, status, channel, lines, total, currency, ship_to and more."""
    t = build_tenants(db)
    response = call(app, "GET", f"/orders/{t.order_id}", merchant_token(db, t.ours.store_id))
    assert response.status_code == 200
    order = response.get_json()
    assert (order["id"], order["status"], order["channel"]) == (t.order_id, "placed", "button")
    assert order["lines"][0]["sku"] == "PODS" and order["lines"][0]["quantity"] == 1
    assert "ship_to" in order and order["shipment"] is None
    assert order["device_id"] == t.ours.device_id


def test_shipping_records_carrier_tracking_number_and_url_then_delivery(
    app: Flask, db: Database
) -> None:
    """ship → 200 the order, shipped, with its shipment; deliver → 200, delivered."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id, "orders:write")
    shipment = {
        "carrier": "DHL",
        "tracking_number": "00340434",
        "tracking_url": "https://dhl.test/t/00340434",
    }
    shipped = call(app, "POST", f"/orders/{t.order_id}/ship", token, body=shipment)
    assert shipped.status_code == 200, shipped.text
    assert shipped.get_json()["status"] == "shipped"
    assert shipped.get_json()["shipment"] == shipment
    delivered = call(app, "POST", f"/orders/{t.order_id}/deliver", token)
    assert delivered.status_code == 200
    assert delivered.get_json()["status"] == "delivered"
    assert delivered.get_json()["shipment"] == shipment


def test_a_move_the_order_does_not_offer_is_409_and_changes_nothing(
    app: Flask, db: Database
) -> None:
    """Delivering a placed order, or cancelling a shipped one, is a 409 problem; nothing moves."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id, "orders:write")
    before = db_snapshot(db)
    assert_problem(call(app, "POST", f"/orders/{t.order_id}/deliver", token), 409)
    assert db_snapshot(db) == before
    call(app, "POST", f"/orders/{t.order_id}/ship", token,
         body={"carrier": "UPS", "tracking_number": "1Z"})  # fmt: skip
    before = db_snapshot(db)
    assert_problem(call(app, "POST", f"/orders/{t.order_id}/cancel", token), 409)
    assert db_snapshot(db) == before


def test_cancelling_returns_the_stock(app: Flask, db: Database) -> None:
    """cancel → 200 the order, cancelled; the product's stock is back."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    pods = next(p for p in call(app, "GET", "/products", token).get_json()["products"]
                if p["sku"] == "PODS")  # fmt: skip
    cancelled = call(app, "POST", f"/orders/{t.order_id}/cancel", token)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    after = call(app, "GET", f"/products/{pods['id']}", token).get_json()
    assert after["stock"] == pods["stock"] + 1


def test_another_stores_order_is_404_everywhere_and_untouched(app: Flask, db: Database) -> None:
    """Their order id reads and moves like a missing one: 404, and nothing changes."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    theirs = t.their_order_id
    assert_problem(call(app, "GET", f"/orders/{theirs}", token), 404, "not_found")
    assert_problem(call(app, "POST", f"/orders/{theirs}/ship", token,
                        body={"carrier": "DHL", "tracking_number": "1"}), 404)  # fmt: skip
    assert_problem(call(app, "POST", f"/orders/{theirs}/deliver", token), 404)
    assert_problem(call(app, "POST", f"/orders/{theirs}/cancel", token), 404)
    assert (
        call(app, "GET", f"/orders?device={t.theirs.device_id}", token).get_json()["orders"] == []
    )
    assert db_snapshot(db) == before


def test_bad_filters_are_400_problems(app: Flask, db: Database) -> None:
    """An unknown status, a garbled cursor or time, a device id of 0: 400 problem+json."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    for query in ("status=lost", "before=nope", "since=yesterday", "device=0", "limit=101",
                  "since=9999-12-31T23:59:59-05:00"):  # fmt: skip
        assert_problem(call(app, "GET", f"/orders?{query}", token), 400, "invalid_request")
