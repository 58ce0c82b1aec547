"""The web's shared design rules on both backends: asking before destroying, times in the
viewer's zone, the store home's figures and search, per-product low stock, archive, SKU case."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from auth.model import Account
from orders.domain.errors import InvalidRequest
from orders.queries.store_home import search_store, today_figures
from orders.services import merchant
from orders.services.lifecycle import mark_shipped
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, Product, Store
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import db_snapshot
from tests.web_helpers import csrf_token


def test_asking_first_changes_nothing_and_names_what_would_go(app: Flask, db: Database) -> None:
    """Unlink, revoke and rotate each show a question page; only its POST acts."""
    t = build_tenants(db)
    before = db_snapshot(db)
    shopper = signed_in(app, t.shopper_email)
    question = shopper.get(f"/my/devices/{t.ours.device_id}/unlink")
    assert question.status_code == 200 and "Unlink Button" in question.text
    assert f'action="/my/devices/{t.ours.device_id}/unlink"' in question.text
    merchant_client = signed_in(app, t.merchant_email)
    store = t.ours.store_id
    revoke = merchant_client.get(f"/stores/{store}/devices/{t.ours.device_id}/revoke")
    assert revoke.status_code == 200 and "Keep it linked" in revoke.text
    assert merchant_client.get(f"/stores/{store}/orders/{t.order_id}/cancel").status_code == 200
    rotate = merchant_client.get(f"/stores/{store}/integrations/clients/any-client/rotate")
    assert "Rotate the secret" in rotate.text
    # Another store's device gets no question: it is not found.
    assert shopper.get(f"/my/devices/{t.theirs.device_id}/unlink").status_code == 404
    assert db_snapshot(db) == before
    form_post(shopper, f"/my/devices/{t.ours.device_id}/unlink")
    with db.read() as session:
        assert session.get_one(DeviceLink, t.ours.link_id).status == "unlinked"


def test_times_show_in_the_store_zone_until_the_viewer_picks_their_own(
    app: Flask, db: Database
) -> None:
    """A <time> carries UTC; its text is the store's zone, then the account's own choice."""
    t = build_tenants(db)
    with db.write() as session:
        session.get_one(Store, t.ours.store_id).time_zone = "Asia/Tokyo"
    client = signed_in(app, t.shopper_email)
    assert "JST" in client.get("/my/orders").text
    stamp = re.search(r'<time datetime="([^"]+)">', client.get("/my/orders").text)
    assert stamp is not None and stamp.group(1).endswith("Z")
    refused = form_post(client, "/settings", {"time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 400 and 'aria-invalid="true"' in refused.text
    assert form_post(client, "/settings", {"time_zone": "America/New_York"}).status_code == 302
    assert "EST" in client.get("/my/orders").text
    with db.read() as session:
        account = session.scalar(select(Account).where(Account.email == t.shopper_email))
        assert account is not None and account.time_zone == "America/New_York"


def test_today_counts_orders_revenue_approvals_and_late_deliveries(db: Database) -> None:
    """Since the store's midnight: the order and its money; a delayed shipment is late."""
    t = build_tenants(db)
    now = utcnow()
    figures = today_figures(db, t.ours.store_id, now)
    assert (figures.orders, figures.awaiting_approval, figures.deliveries_late) == (1, 0, 0)
    with db.read() as session:
        store = session.get_one(Store, t.ours.store_id)
        assert figures.revenue_minor > 0 and figures.currency == store.currency
    mark_shipped(db, t.order_id, t.ours.store_id, "TRACK-1")
    late = today_figures(db, t.ours.store_id, now + timedelta(days=30))
    assert late.orders == 0  # a later day has none yet
    with db.write() as session:
        from orders.store.model import Order

        session.get_one(Order, t.order_id).expected_delivery_at = now - timedelta(days=1)
    assert today_figures(db, t.ours.store_id, now).deliveries_late == 1
    assert today_figures(db, t.theirs.store_id, now).deliveries_late == 0


def test_search_finds_orders_devices_and_products_of_this_store_only(db: Database) -> None:
    """Order id prefix, product name in any case, device serial; never another store's."""
    t = build_tenants(db)
    for prefix in (t.order_id[:6], t.order_id):  # ids hold `_` and `-`: matched as typed
        assert [o[0] for o in search_store(db, t.ours.store_id, prefix).orders] == [t.order_id]
    literal = t.order_id[:3] + "_"  # `_` is a character here, not LIKE's any-one wildcard
    matched = search_store(db, t.ours.store_id, literal).orders
    assert bool(matched) == (t.order_id[3] == "_")
    assert [p[1] for p in search_store(db, t.ours.store_id, "coffee").products] == ["PODS"]
    assert search_store(db, t.ours.store_id, t.their_order_id[:8]).orders == ()
    assert search_store(db, t.ours.store_id, "100%_").empty
    assert search_store(db, t.ours.store_id, "   ").empty


def test_skus_are_unique_whatever_their_case(db: Database) -> None:
    """The service refuses `pods` beside `PODS`, and so does the database itself."""
    t = build_tenants(db)
    with pytest.raises(InvalidRequest) as refused:
        merchant.create_product(db, t.ours.store_id, sku="pods", name="Pods", price_minor=1,
                                stock=1)  # fmt: skip
    assert refused.value.reason == "sku_taken"
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Product(store_id=t.ours.store_id, sku="Pods", name="x", price_minor=1,
                            currency="EUR"))  # fmt: skip
    # Another store may use the same SKU.
    merchant.create_product(db, t.theirs.store_id, sku="pods-2", name="P", price_minor=1, stock=1)


def test_low_stock_uses_each_products_own_level_and_archive_hides(app: Flask, db: Database) -> None:
    """A product with 8 units is low only when its level is above 8; archived leaves lists."""
    t = build_tenants(db)
    with db.read() as session:
        pods = session.scalar(
            select(Product).where(Product.store_id == t.ours.store_id, Product.sku == "PODS")
        )
        assert pods is not None
        pods_id = pods.id
    view = merchant.get_product(db, t.ours.store_id, pods_id)
    merchant.update_product(db, t.ours.store_id, pods_id, name=view.name, price_minor=100,
                            stock=8, aliases=(), active=True, low_stock_level=5)  # fmt: skip
    assert pods_id not in [p.id for p in merchant.low_stock(db, t.ours.store_id).items]
    client = signed_in(app, t.merchant_email)
    edit = form_post(client, f"/stores/{t.ours.store_id}/products/{pods_id}", {
        "name": view.name, "price": "1.00", "stock": "8", "low_stock_level": "20",
        "active": "y", "aliases": ""})  # fmt: skip
    assert edit.status_code == 302
    assert pods_id in [p.id for p in merchant.low_stock(db, t.ours.store_id).items]
    form_post(client, f"/stores/{t.ours.store_id}/products/{pods_id}/archive")
    listed = merchant.list_products(db, t.ours.store_id).items
    assert pods_id not in [p.id for p in listed]
    assert pods_id not in [p.id for p in merchant.low_stock(db, t.ours.store_id).items]
    archived = merchant.list_products(db, t.ours.store_id, archived=True).items
    assert [p.id for p in archived] == [pods_id] and not archived[0].active
    form_post(client, f"/stores/{t.ours.store_id}/products/{pods_id}/restore")
    assert pods_id in [p.id for p in merchant.list_products(db, t.ours.store_id).items]


def test_a_taken_sku_is_said_on_its_field(app: Flask, db: Database) -> None:
    """No raw banner: the SKU field says what is wrong and the page is a 400."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    page = form_post(client, f"/stores/{t.ours.store_id}/products/new", {
        "sku": "pods", "name": "Pods again", "price": "1.00", "stock": "1",
        "pack_size": "1"})  # fmt: skip
    assert page.status_code == 400
    assert 'id="sku-error"' in page.text and 'aria-describedby="sku-hint sku-error"' in page.text
    assert "ignore letter case" in page.text


def test_the_store_home_shows_todays_figures_and_copyable_alexa_values(
    app: Flask, db: Database
) -> None:
    """Figures on the store home; the Alexa setup values are read-only fields to copy."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    home = client.get(f"/stores/{t.ours.store_id}/").text
    assert 'id="today"' in home and "Orders today" in home and "Coffee pods" in home
    assert "— open" not in client.get(f"/stores/{t.ours.store_id}/orders").text
    page = client.get(f"/stores/{t.ours.store_id}/integrations").text
    assert re.search(
        r'id="alexa-authorize" type="text" value="[^"]+/oauth/authorize" readonly', page
    )
    assert re.search(r'id="alexa-token" type="text" value="[^"]+/oauth/token" readonly', page)
    bad = form_post(client, f"/stores/{t.ours.store_id}/integrations/alexa",
                    {"redirect_uris": "not a url"})  # fmt: skip
    assert bad.status_code == 400 and "is not an absolute URI" not in bad.text
    assert 'id="redirect_uris-error"' in bad.text


def test_refused_forms_say_why_on_the_field(app: Flask, db: Database) -> None:
    """An empty sign-in and a wrong deletion word each mark their field and describe it."""
    t = build_tenants(db)
    client = app.test_client()
    token = csrf_token(client.get("/login").text)
    empty = client.post("/login", data={"csrf_token": token, "email": "", "password": ""})
    assert empty.status_code == 400
    assert 'aria-describedby="email-error"' in empty.text and 'id="password-error"' in empty.text
    shopper = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    wrong = form_post(shopper, "/my/privacy", {"confirm": "delete"})
    assert wrong.status_code == 400 and "Type DELETE in capitals." in wrong.text
    assert 'aria-describedby="confirm-error"' in wrong.text
    assert db_snapshot(db) == before
