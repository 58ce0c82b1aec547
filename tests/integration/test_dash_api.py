"""`GET /api/v1/orders`: the token owner's orders, newest first, paginated, problem+json errors."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from auth.principal import DEVICE_SCOPES, SHOPPER_SCOPES
from auth.tokens import issue_token
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from tests.dash_helpers import build_tenants
from tests.factories import HOME


def _token(db: Database, **claims: object) -> str:
    with db.write() as session:
        return issue_token(session, client_id="test", **claims).access_token  # type: ignore[arg-type]


def _get(app: Flask, token: str, query: str = "") -> tuple[int, dict[str, object], str]:
    response = app.test_client().get(
        f"/api/v1/orders{query}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.get_json(), response.mimetype


def test_a_shopper_token_lists_that_shoppers_orders(app: Flask, db: Database) -> None:
    """A shopper sees their orders in the contract shape, and nobody else's."""
    t = build_tenants(db)
    token = _token(db, kind="shopper", scope=SHOPPER_SCOPES, shopper_id=t.ours.shopper_id,
                   store_id=t.ours.store_id)  # fmt: skip
    status, body, _ = _get(app, token)
    assert status == 200
    orders = body["orders"]
    assert isinstance(orders, list) and [o["id"] for o in orders] == [t.order_id]
    assert set(orders[0]) >= {"id", "status", "channel", "lines", "total_minor", "currency",
                              "created", "ship_to"}  # fmt: skip
    assert [(line["sku"], line["quantity"]) for line in orders[0]["lines"]] == [("PODS", 1)]
    assert orders[0]["ship_to"] == {**dict.fromkeys(("line2", "region", "phone")), **HOME}


def test_a_merchant_token_lists_the_stores_orders_newest_first(app: Flask, db: Database) -> None:
    """A merchant client token reads its store's orders, newest first, page by page."""
    t = build_tenants(db)
    start = utcnow() - timedelta(hours=1)
    made = []
    for i in range(4):
        request = OrderRequest(t.ours.store_id, t.ours.shopper_id, "api", (LineRequest("AA", 1),))
        made.append(place_order(db, request, now=start + timedelta(minutes=i)).order.id)
    token = _token(db, kind="merchant", scope="orders:read", store_id=t.ours.store_id,
                   with_refresh=False)  # fmt: skip
    status, body, _ = _get(app, token, "?limit=3")
    assert status == 200
    first = [o["id"] for o in body["orders"]]  # type: ignore[union-attr]
    assert first == [t.order_id, made[3], made[2]]
    status, body, _ = _get(app, token, f"?limit=3&before={body['next_before']}")
    assert [o["id"] for o in body["orders"]] == [made[1], made[0]]  # type: ignore[union-attr]
    assert body["next_before"] is None
    assert t.their_order_id not in str(body)


def test_a_device_token_reads_only_that_devices_orders(app: Flask, db: Database) -> None:
    """A device's token lists what the device ordered, not the rest of its shopper's orders."""
    t = build_tenants(db)
    request = OrderRequest(t.ours.store_id, t.ours.shopper_id, "web", (LineRequest("AA", 1),))
    place_order(db, request)
    token = _token(db, kind="device", scope=DEVICE_SCOPES, shopper_id=t.ours.shopper_id,
                   store_id=t.ours.store_id, device_id=t.ours.device_id,
                   link_id=t.ours.link_id)  # fmt: skip
    _, body, _ = _get(app, token)
    assert [o["id"] for o in body["orders"]] == [t.order_id]  # type: ignore[union-attr]


def test_bad_requests_get_problem_json(app: Flask, db: Database) -> None:
    """No token → 401, a narrow token → 403, a bad limit or cursor → 400; all problem+json."""
    t = build_tenants(db)
    assert app.test_client().get("/api/v1/orders").status_code == 401
    narrow = _token(db, kind="shopper", scope="orders:place", shopper_id=t.ours.shopper_id)
    assert _get(app, narrow)[0] == 403
    token = _token(db, kind="shopper", scope=SHOPPER_SCOPES, shopper_id=t.ours.shopper_id,
                   store_id=t.ours.store_id)  # fmt: skip
    for query in ("?limit=0", "?limit=1000", "?limit=x", "?before=nope", "?status=lost"):
        status, body, mimetype = _get(app, token, query)
        assert (status, mimetype) == (400, "application/problem+json"), query
        assert body["error"] == "invalid_request"


def test_a_merchant_api_client_from_the_dashboard_reads_orders_end_to_end(
    app: Flask, db: Database
) -> None:
    """Client created by the dashboard → client_credentials token → the store's orders."""
    from auth.clients import create_merchant_api_client

    t = build_tenants(db)
    created = create_merchant_api_client(db, t.ours.store_id, "ERP")
    client = app.test_client()
    issued = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.client_id, created.client_secret),
    )
    assert issued.status_code == 200, issued.text
    status, body, _ = _get(app, issued.get_json()["access_token"])
    assert status == 200
    assert [o["id"] for o in body["orders"]] == [t.order_id]  # type: ignore[union-attr]
