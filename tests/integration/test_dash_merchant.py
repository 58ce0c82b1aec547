"""A merchant's pages: catalog, device models, devices, orders, low stock, Alexa and API clients."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from auth.device_flow import start_device_authorization
from auth.model import OAuthClient, Token
from auth.principal import DEVICE_SCOPES
from auth.tokens import issue_token, token_hash
from orders.store.db import Database
from orders.store.model import DeviceLink, DeviceModel, Order, Product, Store
from tests.dash_helpers import add_readings, build_tenants, form_post, signed_in
from tests.factories import db_snapshot
from tests.web_helpers import csrf_token

PRODUCT = {"sku": "TEA-20", "name": "Green tea (20)", "price": "4.99", "stock": "3",
           "pack_size": "1", "aliases": "tea, Green Tea\ngreen tea", "active": "y"}  # fmt: skip


def test_catalog_create_and_edit_with_spoken_aliases(app: Flask, db: Database) -> None:
    """A new product is priced in minor units, its aliases cleaned; edits keep the SKU."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}"
    assert form_post(client, f"{base}/products/new", PRODUCT).status_code == 302
    with db.read() as session:
        product = session.scalar(select(Product).where(Product.sku == "TEA-20"))
        assert product is not None
        assert (product.price_minor, product.stock, product.aliases) == (
            499, 3, ["tea", "green tea"],
        )  # fmt: skip
    edit = {**PRODUCT, "sku": "HACKED", "price": "5.25", "stock": "40", "aliases": "chai"}
    form_post(client, f"{base}/products/{product.id}", edit)
    with db.read() as session:
        changed = session.get(Product, product.id)
        assert changed is not None
        assert (changed.sku, changed.price_minor, changed.stock, changed.aliases) == (
            "TEA-20", 525, 40, ["chai"],
        )  # fmt: skip
    assert "Green tea (20)" in client.get(f"{base}/products").text


def test_bad_products_are_refused_and_change_nothing(app: Flask, db: Database) -> None:
    """A negative price, a taken SKU or a bad SKU answer 400 and the catalog stays as it was."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}"
    before = db_snapshot(db)
    for bad in ({"price": "-1"}, {"sku": "PODS"}, {"sku": "bad sku!"}, {"stock": "many"}):
        response = form_post(client, f"{base}/products/new", {**PRODUCT, **bad})
        assert response.status_code == 400, bad
    assert db_snapshot(db) == before


def test_low_stock_lists_only_products_running_out(app: Flask, db: Database) -> None:
    """Products under the threshold are listed; well-stocked ones are not."""
    t = build_tenants(db)
    with db.write() as session:
        product = session.scalar(
            select(Product).where(Product.store_id == t.ours.store_id, Product.sku == "AA")
        )
        assert product is not None
        product.stock = 2
    page = signed_in(app, t.merchant_email).get(f"/stores/{t.ours.store_id}/low-stock").text
    assert "AA batteries" in page and "Coffee pods" not in page


def test_a_new_device_model_gets_a_working_public_client(app: Flask, db: Database) -> None:
    """Creating a model shows its client id, which can start the device flow at once."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}"
    form = {"name": "Printer X", "kind": "appliance", "skus": ["AA"], "test_mode": "y",
            "slot_name": "black_ink", "slot_unit": "%", "slot_capacity": "100",
            "slot_sku": "PODS"}  # fmt: skip
    response = form_post(client, f"{base}/models/new", form)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    with db.read() as session:
        model = session.scalar(select(DeviceModel).where(DeviceModel.name == "Printer X"))
        assert model is not None and model.test_mode and model.security == "oscore"
        assert sorted(p.sku for p in model.products) == ["AA", "PODS"]
        assert model.client_id in page
    started = start_device_authorization(db, client_id=model.client_id, public_url="http://x")
    assert started.user_code
    form_post(client, f"{base}/models/{model.id}", {"skus": ["PODS"]})
    with db.read() as session:
        changed = session.get(DeviceModel, model.id)
        assert changed is not None and not changed.test_mode
        assert [p.sku for p in changed.products] == ["PODS"]


def test_a_model_for_devices_without_oscore_uses_bearer_tokens(app: Flask, db: Database) -> None:
    """The merchant picks `bearer` for a model whose devices cannot do OSCORE; the list says so."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}"
    form = {"name": "Old button", "kind": "button", "skus": ["AA"], "security": "bearer",
            "slot_unit": "%", "slot_sku": ""}  # fmt: skip
    assert form_post(client, f"{base}/models/new", form).status_code == 302
    with db.read() as session:
        model = session.scalar(select(DeviceModel).where(DeviceModel.name == "Old button"))
        assert model is not None and model.security == "bearer"
    assert "Old button" in (page := client.get(f"{base}/models").text) and "token" in page


def test_a_model_gets_more_slots_and_conditions_on_its_page(app: Flask, db: Database) -> None:
    """Add a second ink and a descale flag; a clashing name is shown on its field, unchanged."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}"
    with db.read() as session:
        model = session.scalars(select(DeviceModel).where(DeviceModel.name == "Coffee machine")
                                .join(Store, Store.id == DeviceModel.store_id)
                                .where(Store.id == t.ours.store_id)).one()  # fmt: skip
    url = f"{base}/models/{model.id}"
    token = csrf_token(client.get(url).text)
    added = client.post(f"{url}/slots", data={
        "slot-csrf_token": token, "slot-name": "milk", "slot-unit": "l",
        "slot-capacity": "1.5", "slot-sku": "AA", "slot-policy": "predictive",
    })  # fmt: skip
    assert added.status_code == 302, added.text
    flagged = client.post(f"{url}/conditions", data={
        "condition-csrf_token": token, "condition-name": "descale", "condition-kind": "flag",
        "condition-message": "Descale it.", "condition-sku": "PODS",
    })  # fmt: skip
    assert flagged.status_code == 302, flagged.text
    page = client.get(url).text
    assert "<code>milk</code>" in page and "<code>descale</code>" in page
    assert "before it runs out" in page and "Descale it." in page
    before = db_snapshot(db)
    clash = client.post(f"{url}/conditions", data={
        "condition-csrf_token": token, "condition-name": "milk", "condition-kind": "percent",
        "condition-message": "x", "condition-threshold": "5", "condition-sku": "",
    })  # fmt: skip
    assert clash.status_code == 400 and "already reports" in clash.text
    no_threshold = client.post(f"{url}/conditions", data={
        "condition-csrf_token": token, "condition-name": "filter_life",
        "condition-kind": "percent", "condition-message": "Replace the filter.",
        "condition-sku": "",
    })  # fmt: skip
    assert no_threshold.status_code == 400 and "needs a threshold" in no_threshold.text
    assert db_snapshot(db) == before


def test_device_list_filters_by_model_status_low_supply_and_serial(
    app: Flask, db: Database
) -> None:
    """Each filter narrows the list to the devices it names."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}/devices"
    with db.write() as session:
        appliance = session.scalar(
            select(DeviceModel).where(
                DeviceModel.store_id == t.ours.store_id, DeviceModel.kind == "appliance"
            )
        )
        assert appliance is not None
        from orders.services.devices import register_device

        coffee = register_device(session, appliance, "COFFEE-9").id
        spare = register_device(session, appliance, "COFFEE-10").id
        appliance_id = appliance.id
    add_readings(db, coffee, [30.0, 5.0])
    add_readings(db, spare, [5.0, 45.0])

    def ids(query: str) -> set[int]:
        page = client.get(f"{base}?{query}").text
        return {int(c.split('"', 1)[0]) for c in page.split(f"{base}/")[1:]}

    assert ids("") == {t.ours.device_id, coffee, spare}
    assert ids(f"model={appliance_id}") == {coffee, spare}
    assert ids("low=1") == {coffee}
    assert ids("status=unlinked") == {coffee, spare}
    assert ids("status=active") == {t.ours.device_id}
    assert ids("serial=COFFEE-10") == {spare}
    form_post(client, f"/my/devices/{t.ours.device_id}/pause")  # merchant is no shopper: 403
    assert ids("status=paused") == set()
    assert client.get(f"{base}?status=bogus").status_code == 400
    assert client.get(f"{base}?model=x").status_code == 400


def test_revoking_a_device_ends_its_link_and_tokens(app: Flask, db: Database) -> None:
    """Revoke from the device page: the link ends and the device's token is revoked."""
    t = build_tenants(db)
    with db.write() as session:
        issue_token(session, client_id="c", kind="device", scope=DEVICE_SCOPES,
                    device_id=t.ours.device_id, link_id=t.ours.link_id)  # fmt: skip
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/devices/{t.ours.device_id}"
    assert "Revoke this device" in client.get(url).text
    form_post(client, f"{url}/revoke")
    with db.read() as session:
        link = session.get(DeviceLink, t.ours.link_id)
        token = session.scalar(select(Token).where(Token.link_id == t.ours.link_id))
        assert link is not None and link.status == "unlinked"
        assert token is not None and token.revoked_at is not None


def test_ship_with_tracking_then_deliver(app: Flask, db: Database) -> None:
    """Mark shipped stores the tracking reference; mark delivered completes the order."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/orders/{t.order_id}"
    page = client.get(url).text
    assert "Mark shipped" in page and 'id="tracking"' not in page  # nothing to track yet
    form_post(client, f"{url}/ship", {"tracking_ref": " DHL-123 "})
    page = client.get(url).text
    assert "Mark delivered" in page and 'id="tracking"' in page
    form_post(client, f"{url}/deliver")
    with db.read() as session:
        order = session.get(Order, t.order_id)
        assert order is not None
        assert (order.status, order.tracking_ref) == ("delivered", "DHL-123")
    listed = client.get(f"/stores/{t.ours.store_id}/orders?status=delivered").text
    assert t.order_id[:8] in listed


def test_a_wrong_transition_is_explained_and_changes_nothing(app: Flask, db: Database) -> None:
    """Delivering a placed order is refused with a message; the order is unchanged."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    url = f"/stores/{t.ours.store_id}/orders/{t.order_id}"
    before = db_snapshot(db)
    form_post(client, f"{url}/deliver")
    assert "cannot become delivered" in client.get(url).text
    assert db_snapshot(db) == before
    form_post(client, f"{url}/cancel")
    with db.read() as session:
        order = session.get(Order, t.order_id)
        assert order is not None and order.status == "cancelled"


def test_alexa_client_secret_is_shown_once_and_stored_hashed(app: Flask, db: Database) -> None:
    """Create and rotate: each secret appears once, only its hash is stored, the old one dies."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}/integrations"
    bad = form_post(client, f"{base}/alexa", {"redirect_uris": "http://evil.example/cb"})
    assert bad.status_code == 400
    created = form_post(client, f"{base}/alexa", {"redirect_uris": "https://layla.amazon.com/x"})
    assert created.headers["Cache-Control"] == "no-store"
    secret = created.text.split('id="client-secret">', 1)[1].split("<", 1)[0]
    with db.read() as session:
        alexa = session.scalar(select(OAuthClient).where(OAuthClient.kind == "alexa"))
        assert alexa is not None and alexa.client_secret_hash == token_hash(secret)
        assert alexa.redirect_uris == ["https://layla.amazon.com/x"]
    assert secret not in client.get(base).text
    rotated = form_post(client, f"{base}/clients/{alexa.client_id}/rotate")
    new_secret = rotated.text.split('id="client-secret">', 1)[1].split("<", 1)[0]
    assert new_secret != secret
    with db.read() as session:
        again = session.get(OAuthClient, alexa.id)
        assert again is not None and again.client_secret_hash == token_hash(new_secret)
    uris = "https://layla.amazon.com/x\nhttps://pitangui.amazon.com/y"
    form_post(client, f"{base}/alexa/redirects", {"redirect_uris": uris})
    with db.read() as session:
        again = session.get(OAuthClient, alexa.id)
        assert again is not None and len(again.redirect_uris) == 2


def test_merchant_api_clients_use_client_credentials(app: Flask, db: Database) -> None:
    """A new API client is confidential, bound to the store, with exactly the chosen scopes."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    page = form_post(client, f"/stores/{t.ours.store_id}/integrations/clients",
                     {"name": "ERP", "scopes": ["orders:read", "catalog:write"]})  # fmt: skip
    secret = page.text.split('id="client-secret">', 1)[1].split("<", 1)[0]
    with db.read() as session:
        row = session.scalar(select(OAuthClient).where(OAuthClient.kind == "merchant_api"))
        assert row is not None
        assert (row.store_id, row.grant_types, row.client_secret_hash, row.scope) == (
            t.ours.store_id, ["client_credentials"], token_hash(secret),
            "orders:read catalog:write",
        )  # fmt: skip
    token = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        auth=(row.client_id, secret),
    ).get_json()  # fmt: skip
    assert set(token["scope"].split()) == {"orders:read", "catalog:write"}


def test_an_api_client_without_a_chosen_scope_is_not_made(app: Flask, db: Database) -> None:
    """No scope ticked (or one that is not a merchant scope): 400, and no client exists."""
    t = build_tenants(db)
    client = signed_in(app, t.merchant_email)
    before = db_snapshot(db)
    url = f"/stores/{t.ours.store_id}/integrations/clients"
    assert form_post(client, url, {"name": "ERP"}).status_code == 400
    assert form_post(client, url, {"name": "ERP", "scopes": "merchant:admin"}).status_code == 400
    assert db_snapshot(db) == before


def test_a_rotated_alexa_secret_stops_working_at_the_token_endpoint(
    app: Flask, db: Database
) -> None:
    """After rotation the token endpoint rejects the old secret and accepts the new one."""
    from auth.clients import create_alexa_client, rotate_secret

    t = build_tenants(db)
    first = create_alexa_client(db, t.ours.store_id, ["https://layla.amazon.com/x"])
    second = rotate_secret(db, t.ours.store_id, first.client.client_id)
    client = app.test_client()

    def token_status(secret: str) -> int:
        form = {"grant_type": "refresh_token", "refresh_token": "x" * 43}
        return client.post(
            "/oauth/token", data=form, auth=(first.client.client_id, secret)
        ).status_code

    assert token_status(first.client_secret) == 401  # invalid_client
    assert token_status(second.client_secret) == 400  # authenticated; the grant is bogus


def test_device_list_pages_by_keyset_without_gaps(app: Flask, db: Database) -> None:
    """31 devices: a page of 25 newest first, then the other 6 behind the Next link."""
    from orders.services.devices import register_device

    t = build_tenants(db)
    with db.write() as session:
        model = session.scalar(
            select(DeviceModel).where(DeviceModel.store_id == t.ours.store_id).limit(1)
        )
        assert model is not None
        made = [register_device(session, model, f"P-{i:02d}").id for i in range(30)]
    client = signed_in(app, t.merchant_email)
    base = f"/stores/{t.ours.store_id}/devices"

    def ids(page: str) -> list[int]:
        return [int(c.split('"', 1)[0]) for c in page.split(f"{base}/")[1:]]

    first = client.get(base).text
    assert ids(first) == sorted([*made, t.ours.device_id], reverse=True)[:25]
    next_url = first.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = client.get(next_url).text
    assert sorted(ids(first) + ids(second)) == sorted([*made, t.ours.device_id])
    assert 'rel="next"' not in second
