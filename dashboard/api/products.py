"""Products: list, get, create, change, archive, and stock adjustments with a reason."""

from __future__ import annotations

from typing import Any

from flask import url_for
from spectree import Response as Responses

from auth.http import current_principal
from dashboard.api.base import ID, bp, created, endpoint, store_id
from dashboard.api.schemas import (
    NewProduct,
    NewStockAdjustment,
    PageQuery,
    Product,
    ProductChange,
    ProductList,
    ProductQuery,
    StockAdjustment,
    StockAdjustmentList,
)
from dashboard.common import get_db
from orders.queries.resources import product_resource, stock_adjustment_resource
from orders.services import merchant, products

TAGS = ("catalog",)


@bp.get("/products")
@endpoint("catalog:read", query=ProductQuery, resp=Responses(HTTP_200=ProductList), tags=TAGS)
def list_products(query: ProductQuery) -> Any:
    """The store's products by id, archived ones too, a page at a time."""
    page = merchant.list_products(
        get_db(), store_id(), cursor=query.cursor, limit=query.limit, archived=None
    )
    return {"products": [product_resource(p) for p in page.items], "next_cursor": page.next_cursor}


@bp.post("/products")
@endpoint("catalog:write", json=NewProduct, resp=Responses(HTTP_201=Product), tags=TAGS,
          idempotent=True, errors=(409, 415, 422))  # fmt: skip
def create_product(json: NewProduct) -> Any:
    """Add a product to the catalog (its SKU must be new in the store: 409 otherwise)."""
    product = merchant.create_product(
        get_db(), store_id(), sku=json.sku, name=json.name.strip(), price_minor=json.price_minor,
        stock=json.stock, pack_size=json.pack_size,
        aliases=merchant.parse_aliases(",".join(json.aliases)),
        low_stock_level=json.low_stock_level,
    )  # fmt: skip
    return created(product_resource(product), url_for(".get_product", product_id=product.id))


@bp.get(f"/products/<{ID}:product_id>")
@endpoint("catalog:read", resp=Responses(HTTP_200=Product), tags=TAGS, errors=(404,))
def get_product(product_id: int) -> Any:
    """One of the store's products."""
    return product_resource(merchant.get_product(get_db(), store_id(), product_id))


@bp.patch(f"/products/<{ID}:product_id>")
@endpoint("catalog:write", json=ProductChange, resp=Responses(HTTP_200=Product), tags=TAGS,
          errors=(404, 415))  # fmt: skip
def change_product(product_id: int, json: ProductChange) -> Any:
    """Change a product's name, price, pack size or aliases; stock moves by adjustments."""
    change = products.ProductChange(
        json.name, json.price_minor, json.pack_size, json.aliases, json.low_stock_level
    )
    return product_resource(products.change_product(get_db(), store_id(), product_id, change))


@bp.post(f"/products/<{ID}:product_id>/archive")
@endpoint("catalog:write", resp=Responses(HTTP_200=Product), tags=TAGS, errors=(404,))
def archive_product(product_id: int) -> Any:
    """Take a product out of the catalog; past orders keep it. Archiving twice is harmless."""
    return product_resource(products.archive_product(get_db(), store_id(), product_id))


@bp.post(f"/products/<{ID}:product_id>/stock-adjustments")
@endpoint("catalog:write", json=NewStockAdjustment, resp=Responses(HTTP_201=StockAdjustment),
          tags=TAGS, idempotent=True, errors=(404, 409, 415, 422))  # fmt: skip
def adjust_stock(product_id: int, json: NewStockAdjustment) -> Any:
    """Add (`+n`) or remove (`-n`) units with a reason; stock never goes below zero (409)."""
    _, adjustment = products.adjust_stock(
        get_db(), store_id(), product_id, delta=json.delta, reason=json.reason,
        actor=current_principal().client_id,
    )  # fmt: skip
    location = url_for(".list_stock_adjustments", product_id=product_id)
    return created(stock_adjustment_resource(adjustment), location)


@bp.get(f"/products/<{ID}:product_id>/stock-adjustments")
@endpoint("catalog:read", query=PageQuery, resp=Responses(HTTP_200=StockAdjustmentList),
          tags=TAGS, errors=(404,))  # fmt: skip
def list_stock_adjustments(product_id: int, query: PageQuery) -> Any:
    """A product's stock adjustments, newest first."""
    page = products.list_adjustments(get_db(), store_id(), product_id, cursor=query.cursor,
                                     limit=query.limit)  # fmt: skip
    return {
        "adjustments": [stock_adjustment_resource(a) for a in page.items],
        "next_cursor": page.next_cursor,
    }
