"""Tenant isolation: a merchant never sees or changes another store's rows; roles are enforced."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from auth import clients
from auth.model import OAuthClient
from orders.store.db import Database
from orders.store.model import DeviceModel, Product
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import db_snapshot


def _their_ids(db: Database, store_id: int) -> tuple[int, int]:
    with db.read() as session:
        product = session.scalar(select(Product.id).where(Product.store_id == store_id))
        model = session.scalar(select(DeviceModel.id).where(DeviceModel.store_id == store_id))
        assert product is not None and model is not None
        return product, model


def test_every_merchant_page_of_another_store_is_an_html_404(app: Flask, db: Database) -> None:
    """Every list and detail URL with another store's ids answers 404 as an HTML page."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    ours, theirs = t.ours.store_id, t.theirs.store_id
    their_product, their_model = _their_ids(db, theirs)
    urls = [
        f"/stores/{theirs}/{path}"
        for path in ("", "products", "low-stock", "models", "models/new", "devices",
                     "orders", "integrations", "products/new",
                     f"products/{their_product}", f"models/{their_model}",
                     f"devices/{t.theirs.device_id}", f"orders/{t.their_order_id}")
    ] + [
        f"/stores/{ours}/products/{their_product}",
        f"/stores/{ours}/models/{their_model}",
        f"/stores/{ours}/devices/{t.theirs.device_id}",
        f"/stores/{ours}/orders/{t.their_order_id}",
    ]  # fmt: skip
    for url in urls:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.mimetype == "text/html" and "<h1>404" in response.text, url


def test_no_change_reaches_another_stores_rows(app: Flask, db: Database) -> None:
    """Every POST aimed at another store's rows is a 404 and the database is unchanged."""
    t = build_tenants(db)
    secret = clients.create_merchant_api_client(db, t.theirs.store_id, "their ERP")
    client = signed_in(app, t.merchant_email)
    ours, theirs = t.ours.store_id, t.theirs.store_id
    their_product, their_model = _their_ids(db, theirs)
    before = db_snapshot(db)
    posts = [
        f"/stores/{ours}/devices/{t.theirs.device_id}/revoke",
        f"/stores/{ours}/orders/{t.their_order_id}/ship",
        f"/stores/{ours}/orders/{t.their_order_id}/deliver",
        f"/stores/{ours}/orders/{t.their_order_id}/cancel",
        f"/stores/{ours}/products/{their_product}",
        f"/stores/{ours}/models/{their_model}",
        f"/stores/{ours}/integrations/clients/{secret.client.client_id}/rotate",
        f"/stores/{theirs}/devices/{t.theirs.device_id}/revoke",
        f"/stores/{theirs}/orders/{t.their_order_id}/cancel",
        f"/stores/{theirs}/products/new",
        f"/stores/{theirs}/integrations/clients",
        f"/stores/{theirs}/integrations/alexa",
    ]
    form = {"name": "X", "sku": "NEW", "price": "1.00", "stock": "1", "pack_size": "1",
            "redirect_uris": "https://example.test/cb", "skus": "PODS"}  # fmt: skip
    for url in posts:
        response = form_post(client, url, form)
        assert response.status_code == 404, url
    assert db_snapshot(db) == before


def test_merchant_lists_show_only_their_own_store(app: Flask, db: Database) -> None:
    """The orders and devices lists hold our rows and none of the other store's."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    orders = client.get(f"/stores/{t.ours.store_id}/orders").text
    assert t.order_id[:8] in orders and t.their_order_id[:8] not in orders
    devices = client.get(f"/stores/{t.ours.store_id}/devices").text
    assert f"/devices/{t.ours.device_id}" in devices
    assert f"/devices/{t.theirs.device_id}" not in devices


def test_a_shopper_cannot_touch_another_shoppers_devices_or_orders(
    app: Flask, db: Database
) -> None:
    """Pausing, unlinking or cancelling someone else's device or order is a 404, nothing changes."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    for url in (
        f"/my/devices/{t.theirs.device_id}/pause",
        f"/my/devices/{t.theirs.device_id}/unlink",
        f"/my/orders/{t.their_order_id}/cancel",
        f"/my/orders/{t.their_order_id}/approve",
    ):
        response = form_post(client, url)
        assert response.status_code == 404, url
        assert "<h1>404" in response.text
    assert db_snapshot(db) == before
    assert f"device-{t.theirs.device_id}" not in client.get("/my/devices").text


def test_roles_are_checked_on_every_part(app: Flask, db: Database) -> None:
    """Shoppers get 404 on store pages, staff without a shopper get 403 on /my, guests sign in."""
    t = build_tenants(db)
    shopper = signed_in(app, t.shopper_email)
    assert shopper.get(f"/stores/{t.ours.store_id}/orders").status_code == 404
    merchant = signed_in(app, t.merchant_email)
    denied = merchant.get("/my/devices")
    assert denied.status_code == 403 and "<h1>403" in denied.text
    guest = app.test_client()
    for url in ("/my/orders", f"/stores/{t.ours.store_id}/orders", "/"):
        response = guest.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_device_model_clients_stay_in_their_store(db: Database) -> None:
    """A model created for one store gets a public client bound to that store only."""
    t = build_tenants(db)
    _model_id, client_id = clients.create_device_model_client(
        db, t.ours.store_id, name="Fridge", kind="appliance"
    )
    with db.read() as session:
        client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        assert client is not None
        assert (client.kind, client.store_id, client.client_secret_hash) == (
            "device_model", t.ours.store_id, None,
        )  # fmt: skip
