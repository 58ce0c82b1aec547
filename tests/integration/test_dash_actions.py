"""Order pages offer exactly what orders.domain.actions allows, and every other action is
refused."""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from orders.domain.actions import Viewer, allowed_actions
from orders.services.devices import LinkRules, update_link
from orders.services.lifecycle import Actor, cancel_order, get_order, mark_delivered, mark_shipped
from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink
from tests.dash_helpers import Tenants, build_tenants, form_post, signed_in
from tests.factories import db_snapshot

SHOPPER_ACTIONS = ("approve", "reject", "cancel")
MERCHANT_ACTIONS = ("ship", "deliver", "cancel")


def _orders_in_every_state(db: Database, t: Tenants) -> dict[str, str]:
    """One order of ours per state (placed inside and past its window), by name."""
    store, shopper = t.ours.store_id, t.ours.shopper_id

    def web_order(hours_ago: float = 0) -> str:
        request = OrderRequest(store, shopper, "web", (LineRequest("AA", 1),))
        return place_order(db, request, now=utcnow() - timedelta(hours=hours_ago)).order.id

    cancel_order(db, t.order_id, Actor.merchant(store))
    with db.write() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        assert link is not None
        update_link(session, link, LinkRules(approval_required=True))
    pending = press(db, t.ours.device_id, 2).order
    assert pending.status == "pending_approval"
    shipped, delivered = web_order(), web_order()
    for order_id in (shipped, delivered):
        mark_shipped(db, order_id, store, "TRACK")
    mark_delivered(db, delivered, store)
    return {
        "pending_approval": pending.id,
        "placed": web_order(),
        "placed_past_window": web_order(hours_ago=2),
        "shipped": shipped,
        "delivered": delivered,
        "cancelled": t.order_id,
    }


def _offered(html: str, prefix: str, order_id: str) -> set[str]:
    """The actions a page offers for one order: the forms posting to `prefix/<id>/<action>`."""
    return set(re.findall(rf'(?:action|href)="{re.escape(prefix)}/{order_id}/(\w+)"', html))


def _row(html: str, order_id: str) -> str:
    match = re.search(rf'<tr id="order-{order_id}">.*?</tr>', html, re.S)
    assert match is not None, f"order {order_id} is not listed"
    return match.group(0)


def test_my_orders_offers_each_order_exactly_its_allowed_actions(app: Flask, db: Database) -> None:
    """Approve/reject while waiting, cancel (with its end) in the window, nothing after."""
    t = build_tenants(db)
    ids = _orders_in_every_state(db, t)
    html = signed_in(app, t.shopper_email).get("/my/orders").text
    expected = {"pending_approval": {"approve", "reject"}, "placed": {"cancel"}}
    viewer = Viewer.shopper(t.ours.shopper_id)
    for state, order_id in ids.items():
        row = _row(html, order_id)
        offered = _offered(row, "/my/orders", order_id)
        assert offered == expected.get(state, set()), state
        allowed = allowed_actions(get_order(db, order_id, viewer), viewer, utcnow())
        assert offered == set(allowed.actions), state
        assert ("until " in row) == (state == "placed"), state


def test_the_merchant_order_page_offers_exactly_the_allowed_actions(
    app: Flask, db: Database
) -> None:
    """Ship and cancel while placed (window or not), deliver once shipped, nothing when done."""
    t = build_tenants(db)
    ids = _orders_in_every_state(db, t)
    client = signed_in(app, t.merchant_email)
    prefix = f"/stores/{t.ours.store_id}/orders"
    expected = {
        "pending_approval": {"cancel"},
        "placed": {"ship", "cancel"},
        "placed_past_window": {"ship", "cancel"},
        "shipped": {"deliver"},
    }
    viewer = Viewer.merchant(t.ours.store_id)
    for state, order_id in ids.items():
        offered = _offered(client.get(f"{prefix}/{order_id}").text, prefix, order_id)
        assert offered == expected.get(state, set()), state
        allowed = allowed_actions(get_order(db, order_id, viewer), viewer, utcnow())
        assert offered == set(allowed.actions), state


def _post_everything_not_offered(client: FlaskClient, prefix: str, ids: dict[str, str],
                                 actions: tuple[str, ...]) -> None:  # fmt: skip
    for order_id in ids.values():
        page = client.get(prefix if prefix.startswith("/my") else f"{prefix}/{order_id}").text
        offered = _offered(page, prefix, order_id)
        for action in set(actions) - offered:
            response = form_post(client, f"{prefix}/{order_id}/{action}")
            assert response.status_code == 302, (order_id, action)


def test_what_a_page_does_not_offer_its_view_refuses_and_nothing_changes(
    app: Flask, db: Database
) -> None:
    """Posting any action the page left out (reject a placed order, ship a pending one…)."""
    t = build_tenants(db)
    ids = _orders_in_every_state(db, t)
    before = db_snapshot(db)
    shopper = signed_in(app, t.shopper_email)
    _post_everything_not_offered(shopper, "/my/orders", ids, SHOPPER_ACTIONS)
    merchant = signed_in(app, t.merchant_email)
    _post_everything_not_offered(
        merchant, f"/stores/{t.ours.store_id}/orders", ids, MERCHANT_ACTIONS
    )
    assert db_snapshot(db) == before
