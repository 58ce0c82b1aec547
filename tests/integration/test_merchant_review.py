"""Merchant review (#16): orders at or over a store's threshold wait for the store, which
approves or rejects them in the REST API and on its order page; shopper consent stays the
shopper's."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select, update

from orders.domain.webhooks import webhook_type
from orders.services.devices import LinkRules
from orders.services.lifecycle import approve_order
from orders.services.ordering import press
from orders.store.db import Database
from orders.store.model import Order, OrderEvent, Product, Store
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import build_world, db_snapshot


def _review_over(db: Database, store_id: int, threshold: int | None) -> None:
    with db.write() as session:
        session.execute(
            update(Store).where(Store.id == store_id).values(review_orders_over_minor=threshold)
        )


def _webhook_types(db: Database, order_id: str) -> list[str]:
    with db.read() as session:
        rows = session.execute(
            select(OrderEvent.type, OrderEvent.status)
            .where(OrderEvent.order_id == order_id)
            .order_by(OrderEvent.id)
        ).all()
    return [webhook_type(kind, status) for kind, status in rows]


def _stock(db: Database, store_id: int) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(Product.stock).where(Product.store_id == store_id, Product.sku == "PODS")
            )
            or 0
        )


def test_an_order_over_the_threshold_waits_for_the_store_which_approves_it(
    app: Flask, db: Database
) -> None:
    """A press of 500 at a threshold of 500: pending_approval held by the merchant; POST
    /approve places it (order.approved), and approving again is a 409."""
    world = build_world(db)
    _review_over(db, world.store_id, 500)
    pressed = press(db, world.device_id, 1)
    assert (pressed.outcome, pressed.order.status) == ("needs_approval", "pending_approval")
    token = merchant_token(db, world.store_id, "orders:read orders:write")
    held = call(app, "GET", f"/orders/{pressed.order.id}", token).get_json()
    assert held["approval_by"] == "merchant"
    approved = call(app, "POST", f"/orders/{pressed.order.id}/approve", token)
    assert approved.status_code == 200, approved.text
    assert (approved.get_json()["status"], approved.get_json()["approval_by"]) == ("placed", None)
    assert _webhook_types(db, pressed.order.id) == ["order.pending_approval", "order.approved"]
    before = db_snapshot(db)
    assert_problem(call(app, "POST", f"/orders/{pressed.order.id}/approve", token), 409)
    assert db_snapshot(db) == before


def test_the_store_rejects_an_order_it_holds_and_the_stock_returns(
    app: Flask, db: Database
) -> None:
    """POST /reject: cancelled, order.rejected, the unit back in stock."""
    world = build_world(db)
    _review_over(db, world.store_id, 1)
    stock = _stock(db, world.store_id)
    order = press(db, world.device_id, 1).order
    assert _stock(db, world.store_id) == stock - 1
    token = merchant_token(db, world.store_id, "orders:write")
    rejected = call(app, "POST", f"/orders/{order.id}/reject", token)
    assert rejected.status_code == 200, rejected.text
    assert rejected.get_json()["status"] == "cancelled"
    assert _webhook_types(db, order.id) == ["order.pending_approval", "order.rejected"]
    assert _stock(db, world.store_id) == stock


def test_the_store_cannot_give_or_refuse_a_shoppers_consent(app: Flask, db: Database) -> None:
    """An order waiting for its shopper: /approve and /reject are 409 problems; nothing moves."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    order = press(db, world.device_id, 1).order
    token = merchant_token(db, world.store_id, "orders:read orders:write")
    assert call(app, "GET", f"/orders/{order.id}", token).get_json()["approval_by"] == "shopper"
    before = db_snapshot(db)
    for action in ("approve", "reject"):
        answer = call(app, "POST", f"/orders/{order.id}/{action}", token)
        assert_problem(answer, 409, "not_permitted")
        assert "shopper" in answer.get_json()["detail"]
    assert db_snapshot(db) == before


def test_after_the_shoppers_consent_a_large_order_waits_for_the_store(db: Database) -> None:
    """Shopper-held first; the shopper approves; then the store holds it (pending_approval
    again, approval_by merchant), and the shopper cannot approve it a second time."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    _review_over(db, world.store_id, 500)
    order = press(db, world.device_id, 1).order
    view = approve_order(db, order.id, world.shopper_id)
    assert (view.status, view.approval_by) == ("pending_approval", "merchant")
    assert _webhook_types(db, order.id) == ["order.pending_approval"] * 2
    before = db_snapshot(db)
    try:
        approve_order(db, order.id, world.shopper_id)
    except Exception as refused:  # the domain's NotAllowed
        assert getattr(refused, "reason", None) == "not_permitted"
    else:
        raise AssertionError("the shopper approved an order held for the store")
    assert db_snapshot(db) == before


def test_another_stores_held_order_is_404(app: Flask, db: Database) -> None:
    """Their merchant-held order reads and moves like a missing one."""
    t = build_tenants(db)
    _review_over(db, t.theirs.store_id, 1)
    theirs = press(db, t.theirs.device_id, 2).order
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    for action in ("approve", "reject"):
        assert_problem(call(app, "POST", f"/orders/{theirs.id}/{action}", token), 404)
    assert db_snapshot(db) == before


def test_the_order_page_offers_approve_and_asks_before_rejecting(app: Flask, db: Database) -> None:
    """The merchant's page of a held order has Approve and Reject; Reject asks first (GET),
    then rejects (POST)."""
    t = build_tenants(db)
    _review_over(db, t.ours.store_id, 1)
    with db.write() as session:  # the tenants' first order is closed, so the button may order
        session.execute(update(Order).values(status="delivered"))
    order = press(db, t.ours.device_id, 2).order
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}/orders/{order.id}"
    page = client.get(base).text
    assert f'action="{base}/approve"' in page and f'href="{base}/reject"' in page
    ask = client.get(f"{base}/reject")
    assert ask.status_code == 200 and f'action="{base}/reject"' in ask.text
    assert _webhook_types(db, order.id) == ["order.pending_approval"]
    done = form_post(client, f"{base}/reject")
    assert done.status_code == 302
    with db.read() as session:
        assert session.get(Order, order.id).status == "cancelled"  # type: ignore[union-attr]
    assert _webhook_types(db, order.id)[-1] == "order.rejected"


def test_the_store_approves_on_its_order_page(app: Flask, db: Database) -> None:
    """POST the page's Approve: the order is placed."""
    t = build_tenants(db)
    _review_over(db, t.ours.store_id, 1)
    with db.write() as session:
        session.execute(update(Order).values(status="delivered"))
    order = press(db, t.ours.device_id, 2).order
    client = signed_in(app, t.merchant_email)
    done = form_post(client, f"/stores/{t.ours.store_id}/orders/{order.id}/approve")
    assert done.status_code == 302
    with db.read() as session:
        assert session.get(Order, order.id).status == "placed"  # type: ignore[union-attr]


def test_the_orders_page_sets_and_clears_the_review_threshold(app: Flask, db: Database) -> None:
    """12.50 is stored as 1250 minor units; a negative total is refused on its field (400,
    nothing saved); an empty field turns review off."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/orders/review"

    def stored() -> int | None:
        with db.read() as session:
            return session.get(Store, t.ours.store_id).review_orders_over_minor  # type: ignore[union-attr]

    assert form_post(client, url, {"review_over": "12.50"}).status_code == 302
    assert stored() == 1250
    assert 'value="12.50"' in client.get(f"/stores/{t.ours.store_id}/orders").text
    refused = form_post(client, url, {"review_over": "-1"})
    assert refused.status_code == 400 and 'id="review_over-error"' in refused.text
    assert stored() == 1250
    assert form_post(client, url, {"review_over": ""}).status_code == 302
    assert stored() is None
