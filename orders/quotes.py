"""What a purchase would cost and when it would arrive, before anything is ordered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders import rules
from orders.consent import Consent, consent_needed
from orders.db import Database, utcnow
from orders.errors import InvalidRequest, NotFound, OrderRefused
from orders.model import Product, Shopper, Store
from orders.search import ProductMatch, catalog_in, match_products
from orders.services import LineRequest


@dataclass(frozen=True)
class QuoteLine:
    """One product of a quote at today's price."""

    sku: str
    name: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        """Line total in minor units."""
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class Quote:
    """Everything read back to a shopper before they say yes."""

    store_id: int
    store_name: str
    lines: tuple[QuoteLine, ...]
    delivery_minor: int
    total_minor: int
    currency: str
    arrives_on: date
    consent: Consent

    def line_requests(self) -> tuple[LineRequest, ...]:
        """The lines as place_order wants them."""
        return tuple(LineRequest(line.sku, line.quantity) for line in self.lines)


def expected_arrival(ordered_at: datetime, lead_time_days: float) -> date:
    """The day an order placed at `ordered_at` should arrive (UTC calendar day)."""
    return (ordered_at + timedelta(days=lead_time_days)).date()


def quote(
    db: Database,
    shopper_id: int,
    store_id: int,
    lines: Sequence[LineRequest],
    *,
    now: datetime | None = None,
) -> Quote:
    """Price `lines` in a store for a shopper, check stock, and say what consent a yes needs."""
    with db.read() as session:
        return quote_in(session, shopper_id, store_id, lines, now or utcnow())


def quote_in(
    session: Session,
    shopper_id: int,
    store_id: int,
    lines: Sequence[LineRequest],
    now: datetime,
) -> Quote:
    """quote() inside the caller's transaction."""
    if not lines:
        raise InvalidRequest("no_lines", "a quote needs at least one line")
    for line in lines:
        rules.check_quantity(line.quantity)
    store = session.get(Store, store_id)
    shopper = session.get(Shopper, shopper_id)
    if store is None:
        raise NotFound("not_found", "no such store")
    if shopper is None or shopper.deleted_at is not None:
        raise NotFound("not_found", "no such shopper")
    products = {
        p.sku: p
        for p in session.scalars(
            select(Product).where(
                Product.store_id == store_id, Product.sku.in_([line.sku for line in lines])
            )
        )
    }
    quoted = []
    for line in lines:
        product = products.get(line.sku)
        if product is None or not product.active:
            raise InvalidRequest("unknown_sku", f"no product {line.sku!r} in this store")
        if product.stock < line.quantity:
            raise OrderRefused("out_of_stock", f"not enough {line.sku} in stock")
        quoted.append(QuoteLine(product.sku, product.name, line.quantity, product.price_minor))
    # Stores charge no delivery yet; the field keeps the read-back honest when they do.
    delivery = 0
    total = sum(line.total_minor for line in quoted) + delivery
    return Quote(
        store_id=store.id,
        store_name=store.name,
        lines=tuple(quoted),
        delivery_minor=delivery,
        total_minor=total,
        currency=store.currency,
        arrives_on=expected_arrival(now, store.lead_time_days),
        consent=consent_needed(shopper, total, now),
    )


@dataclass(frozen=True)
class NamedQuote:
    """A product looked up by the words a shopper used and, when found, its quote."""

    match: ProductMatch
    quote: Quote | None = None


def quote_named(
    db: Database,
    shopper_id: int,
    store_id: int,
    query: str,
    quantity: int,
    *,
    sku_hints: Iterable[str] = (),
    now: datetime | None = None,
) -> NamedQuote:
    """Find the product named in the store's catalog and quote it, in one read."""
    with db.read() as session:
        match = match_products(catalog_in(session, store_id), query, sku_hints=sku_hints)
        if match.status != "found":
            return NamedQuote(match)
        line = LineRequest(match.product.sku, quantity)
        return NamedQuote(match, quote_in(session, shopper_id, store_id, [line], now or utcnow()))
