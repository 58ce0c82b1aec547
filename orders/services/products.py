"""A store's products through their life: change, archive, and stock adjusted with a reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest, NotAllowed, NotFound
from orders.queries.pages import Page, clamp_limit, id_cursor, page_of
from orders.services.merchant import ProductView, parse_aliases
from orders.store.db import Database, utcnow
from orders.store.model import Product, StockAdjustment

# products.stock and price_minor are INTEGERs on PostgreSQL.
MAX_STOCK = 2**31 - 1
MAX_PRICE = 2**31 - 1


@dataclass(frozen=True)
class ProductChange:
    """What to change of a product; None leaves a field as it is."""

    name: str | None = None
    price_minor: int | None = None
    pack_size: int | None = None
    aliases: Sequence[str] | None = None
    low_stock_level: int | None = None


@dataclass(frozen=True)
class AdjustmentView:
    """One recorded stock change."""

    id: int
    product_id: int
    sku: str
    delta: int
    reason: str
    stock_after: int
    actor: str
    created_at: datetime


def change_product(
    db: Database, store_id: int, product_id: int, change: ProductChange
) -> ProductView:
    """Change a product's name, price, pack size or aliases (stock moves by adjustments)."""
    if change.name is not None and not 1 <= len(change.name.strip()) <= 200:
        raise InvalidRequest("bad_name", "a name needs 1-200 characters")
    if change.price_minor is not None and not 0 <= change.price_minor <= MAX_PRICE:
        raise InvalidRequest("bad_price", "a price is 0 or more minor units")
    if change.pack_size is not None and not 1 <= change.pack_size <= 10**6:
        raise InvalidRequest("bad_pack_size", "a pack holds 1 or more units")
    if change.low_stock_level is not None and not 0 <= change.low_stock_level <= 10**6:
        raise InvalidRequest("bad_low_stock_level", "the low-stock level is 0 to 1,000,000 units")
    aliases = None if change.aliases is None else parse_aliases(",".join(change.aliases))

    def work(session: Session) -> ProductView:
        product = store_product(session, store_id, product_id, lock=True)
        if change.name is not None:
            product.name = change.name.strip()
        if change.price_minor is not None:
            product.price_minor = change.price_minor
        if change.pack_size is not None:
            product.pack_size = change.pack_size
        if aliases is not None:
            product.aliases = aliases
        if change.low_stock_level is not None:
            product.low_stock_level = change.low_stock_level
        session.flush()
        return ProductView.of(product)

    return db.run_write(work)


def archive_product(db: Database, store_id: int, product_id: int) -> ProductView:
    """Take a product out of the catalog: no new orders; past orders and links keep it."""

    def work(session: Session) -> ProductView:
        product = store_product(session, store_id, product_id, lock=True)
        product.active = False
        product.archived_at = product.archived_at or utcnow()
        session.flush()
        return ProductView.of(product)

    return db.run_write(work)


def adjust_stock(
    db: Database,
    store_id: int,
    product_id: int,
    *,
    delta: int,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> tuple[ProductView, AdjustmentView]:
    """Add (`delta` > 0) or remove units, recording why; stock never goes below zero."""
    reason = reason.strip()
    if delta == 0 or abs(delta) > MAX_STOCK:
        raise InvalidRequest("bad_delta", "adjust by a non-zero number of units")
    if not 1 <= len(reason) <= 200:
        raise InvalidRequest("bad_reason", "a reason needs 1-200 characters")

    def work(session: Session) -> tuple[ProductView, AdjustmentView]:
        product = store_product(session, store_id, product_id, lock=True)
        after = product.stock + delta
        if after < 0:
            raise NotAllowed("insufficient_stock", f"only {product.stock} units in stock")
        if after > MAX_STOCK:
            raise InvalidRequest("bad_delta", "that is more stock than a product can hold")
        product.stock = after
        row = StockAdjustment(
            store_id=store_id, product_id=product.id, delta=delta, reason=reason,
            stock_after=after, actor=actor[:64], created_at=now or utcnow(),
        )  # fmt: skip
        session.add(row)
        session.flush()
        return ProductView.of(product), _adjustment(row, product.sku)

    return db.run_write(work)


def list_adjustments(
    db: Database,
    store_id: int,
    product_id: int,
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[AdjustmentView]:
    """A product's stock adjustments, newest first."""
    size = clamp_limit(limit)
    before = id_cursor(cursor)
    with db.read() as session:
        product = store_product(session, store_id, product_id, lock=False)
        query = select(StockAdjustment).where(StockAdjustment.product_id == product.id)
        if before is not None:
            query = query.where(StockAdjustment.id < before)
        query = query.order_by(StockAdjustment.id.desc()).limit(size + 1)
        rows = [_adjustment(row, product.sku) for row in session.scalars(query)]
    return page_of(rows, size, lambda a: str(a.id))


def store_product(session: Session, store_id: int, product_id: int, *, lock: bool) -> Product:
    """The store's product (another store's product is not found)."""
    query = select(Product).where(Product.id == product_id, Product.store_id == store_id)
    product = session.scalar(query.with_for_update() if lock else query)
    if product is None:
        raise NotFound("not_found", "no such product")
    return product


def _adjustment(row: StockAdjustment, sku: str) -> AdjustmentView:
    return AdjustmentView(
        row.id, row.product_id, sku, row.delta, row.reason, row.stock_after, row.actor,
        row.created_at,
    )  # fmt: skip
