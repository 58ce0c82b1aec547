"""Merchant REST API, catalog: create (idempotent), change, archive, stock adjustments."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from orders.services.merchant import list_products
from orders.store.db import Database
from orders.store.model import Product, StockAdjustment
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import build_tenants
from tests.factories import count, db_snapshot

NEW = {"sku": "FILTER-2", "name": "Water filter", "price_minor": 1299, "stock": 7,
       "aliases": ["filter"]}  # fmt: skip


def _product_id(db: Database, store_id: int, sku: str) -> int:
    with db.read() as session:
        found = session.scalar(
            select(Product.id).where(Product.store_id == store_id, Product.sku == sku)
        )
    assert found is not None
    return found


def test_a_new_product_is_201_with_its_location(app: Flask, db: Database) -> None:
    """POST /products → 201 the product (in the store's currency) and where to read it."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id, "catalog:read catalog:write")
    response = call(app, "POST", "/products", token, body=NEW)
    assert response.status_code == 201, response.text
    product = response.get_json()
    assert (product["sku"], product["currency"], product["stock"], product["active"]) == (
        "FILTER-2", "EUR", 7, True)  # fmt: skip
    assert response.headers["Location"].endswith(f"/api/v1/products/{product['id']}")
    assert call(app, "GET", f"/products/{product['id']}", token).get_json() == product


def test_the_same_idempotency_key_creates_once_and_replays_the_answer(
    app: Flask, db: Database
) -> None:
    """A repeat with the same key and body gets the first answer; one product exists."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    products = count(db, Product)
    first = call(app, "POST", "/products", token, body=NEW, Idempotency_Key="k-1")
    again = call(app, "POST", "/products", token, body=NEW, Idempotency_Key="k-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, Product) == products + 1


def test_the_same_key_with_another_body_is_422_and_creates_nothing(
    app: Flask, db: Database
) -> None:
    """Reusing a key for a different request is refused (422) and changes nothing."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    call(app, "POST", "/products", token, body=NEW, Idempotency_Key="k-2")
    before = db_snapshot(db)
    other = {**NEW, "sku": "FILTER-3"}
    response = call(app, "POST", "/products", token, body=other, Idempotency_Key="k-2")
    assert_problem(response, 422, "idempotency_key_reused")
    assert db_snapshot(db) == before


def test_a_refused_create_frees_its_key_for_a_corrected_retry(app: Flask, db: Database) -> None:
    """A 4xx answer is not kept: fixing the request and sending the same key works."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    taken = {**NEW, "sku": "PODS"}
    assert_problem(call(app, "POST", "/products", token, body=taken, Idempotency_Key="k-3"), 400)
    retry = call(app, "POST", "/products", token, body=taken | {"sku": "PODS-2"},
                 Idempotency_Key="k-3")  # fmt: skip
    assert retry.status_code == 201


def test_keys_belong_to_one_client(app: Flask, db: Database) -> None:
    """Another store's client with the same key creates its own product."""
    t = build_tenants(db)
    ours = call(app, "POST", "/products", merchant_token(db, t.ours.store_id), body=NEW,
                Idempotency_Key="shared")  # fmt: skip
    theirs = call(app, "POST", "/products", merchant_token(db, t.theirs.store_id), body=NEW,
                  Idempotency_Key="shared")  # fmt: skip
    assert ours.status_code == theirs.status_code == 201
    assert ours.get_json()["id"] != theirs.get_json()["id"]


def test_a_bad_idempotency_key_is_400(app: Flask, db: Database) -> None:
    """A key of 256 characters is refused before anything is created."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    response = call(app, "POST", "/products", token, body=NEW, Idempotency_Key="k" * 256)
    assert_problem(response, 400)
    assert db_snapshot(db) == before


def test_a_change_touches_only_the_fields_sent(app: Flask, db: Database) -> None:
    """PATCH name and price; stock, pack size and aliases stay."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    pods = _product_id(db, t.ours.store_id, "PODS")
    before = call(app, "GET", f"/products/{pods}", token).get_json()
    response = call(app, "PATCH", f"/products/{pods}", token,
                    body={"name": "Espresso pods", "price_minor": 650})  # fmt: skip
    assert response.status_code == 200
    assert response.get_json() == before | {"name": "Espresso pods", "price_minor": 650}


def test_archiving_takes_a_product_out_of_the_catalog(app: Flask, db: Database) -> None:
    """archive → 200 with active false; archiving again is harmless."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    aa = _product_id(db, t.ours.store_id, "AA")
    archived = call(app, "POST", f"/products/{aa}/archive", token).get_json()
    assert archived["active"] is False and archived["archived"] is True
    assert call(app, "POST", f"/products/{aa}/archive", token).status_code == 200
    # The API lists archived products too; the web catalog does not.
    listed = call(app, "GET", "/products", token).get_json()["products"]
    assert aa in [p["id"] for p in listed]
    assert aa not in [p.id for p in list_products(db, t.ours.store_id).items]


def test_the_low_stock_level_is_set_and_changed_through_the_api(app: Flask, db: Database) -> None:
    """A new product's level is set on creation (10 by default); PATCH moves it; -1 is refused."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    made = call(app, "POST", "/products", token, body={"sku": "TEA", "name": "Tea",
                "price_minor": 100, "low_stock_level": 3})  # fmt: skip
    assert made.status_code == 201 and made.get_json()["low_stock_level"] == 3
    pods = _product_id(db, t.ours.store_id, "PODS")
    assert call(app, "GET", f"/products/{pods}", token).get_json()["low_stock_level"] == 10
    changed = call(app, "PATCH", f"/products/{pods}", token, body={"low_stock_level": 25})
    assert changed.get_json()["low_stock_level"] == 25
    refused = call(app, "PATCH", f"/products/{pods}", token, body={"low_stock_level": -1})
    assert refused.status_code == 400  # a body outside the schema


def test_stock_adjustments_move_stock_and_keep_their_reason(app: Flask, db: Database) -> None:
    """+5 and -3 with reasons: stock follows, and the list shows both, newest first."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    aa = _product_id(db, t.ours.store_id, "AA")
    stock = call(app, "GET", f"/products/{aa}", token).get_json()["stock"]
    added = call(app, "POST", f"/products/{aa}/stock-adjustments", token,
                 body={"delta": 5, "reason": "delivery from supplier"})  # fmt: skip
    assert added.status_code == 201, added.text
    assert (added.get_json()["delta"], added.get_json()["stock_after"]) == (5, stock + 5)
    removed = call(app, "POST", f"/products/{aa}/stock-adjustments", token,
                   body={"delta": -3, "reason": "damaged in the warehouse"})  # fmt: skip
    assert removed.get_json()["stock_after"] == stock + 2
    assert call(app, "GET", f"/products/{aa}", token).get_json()["stock"] == stock + 2
    listed = call(app, "GET", f"/products/{aa}/stock-adjustments", token).get_json()
    assert [(a["delta"], a["reason"]) for a in listed["adjustments"]] == [
        (-3, "damaged in the warehouse"), (5, "delivery from supplier")]  # fmt: skip


def test_stock_never_goes_below_zero(app: Flask, db: Database) -> None:
    """Removing more than is there is 409 and records nothing; a zero delta is 400."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    aa = _product_id(db, t.ours.store_id, "AA")
    before = db_snapshot(db)
    response = call(app, "POST", f"/products/{aa}/stock-adjustments", token,
                    body={"delta": -1000, "reason": "stocktake"})  # fmt: skip
    assert_problem(response, 409, "insufficient_stock")
    zero = call(app, "POST", f"/products/{aa}/stock-adjustments", token,
                body={"delta": 0, "reason": "nothing"})  # fmt: skip
    assert_problem(zero, 400)
    assert db_snapshot(db) == before
    assert count(db, StockAdjustment) == 0


def test_another_stores_product_is_404_and_untouched(app: Flask, db: Database) -> None:
    """Their product id: get, change, archive and adjust are all 404; nothing changes."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    theirs = _product_id(db, t.theirs.store_id, "PODS")
    before = db_snapshot(db)
    assert_problem(call(app, "GET", f"/products/{theirs}", token), 404)
    assert_problem(call(app, "PATCH", f"/products/{theirs}", token, body={"name": "x"}), 404)
    assert_problem(call(app, "POST", f"/products/{theirs}/archive", token), 404)
    assert_problem(call(app, "POST", f"/products/{theirs}/stock-adjustments", token,
                        body={"delta": 1, "reason": "r"}), 404)  # fmt: skip
    assert_problem(call(app, "GET", f"/products/{theirs}/stock-adjustments", token), 404)
    assert db_snapshot(db) == before
    listed = call(app, "GET", "/products", token).get_json()["products"]
    assert theirs not in [p["id"] for p in listed]


def test_numbers_past_the_columns_range_are_400_not_database_errors(
    app: Flask, db: Database
) -> None:
    """A price or a page cursor past INTEGER is refused as bad input on both backends."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    aa = _product_id(db, t.ours.store_id, "AA")
    before = db_snapshot(db)
    assert_problem(call(app, "PATCH", f"/products/{aa}", token, body={"price_minor": 2**31}), 400)
    assert_problem(call(app, "GET", "/products?cursor=102643588283", token), 400)
    assert_problem(call(app, "GET", "/devices?cursor=2147483648", token), 400)
    assert call(app, "GET", "/products?cursor=2147483647", token).get_json()["products"] == []
    assert db_snapshot(db) == before
