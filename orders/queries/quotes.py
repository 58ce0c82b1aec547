"""What a purchase would cost and when it would arrive, before anything is ordered."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, select

from orders.domain import rules
from orders.domain.errors import InvalidRequest, OrderRefused
from orders.queries.search import ProductMatch, catalog_on, match_products
from orders.services import placing
from orders.services.consent import Consent, consent_needed
from orders.services.placing import LineRequest
from orders.store.db import Database, utcnow
from orders.store.model import OPEN_STATUSES, Order, OrderLine
from orders.store.sql import in_list


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
class OnTheWay:
    """What the shopper already has on its way of a quote's products: how many, and when."""

    quantity: int
    arrives_on: date


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
    on_the_way: OnTheWay | None = None  # open orders of these products (the household guard)
    waits_for_approval: bool = False  # the shopper has voice purchases wait for approval

    def line_requests(self) -> tuple[LineRequest, ...]:
        """The lines as place_order wants them."""
        return tuple(LineRequest(line.sku, line.quantity) for line in self.lines)


# The lines of the household guard's open orders (placing.household_open_order), with days.
_COMING = (
    select(OrderLine.quantity, Order.created_at, Order.expected_delivery_at)
    .join(Order, Order.id == OrderLine.order_id)
    .where(
        in_list(Order.shopper_id, "shoppers"),
        in_list(OrderLine.product_id, "products"),
        Order.status.in_(OPEN_STATUSES),
    )
)


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
    moment = now or utcnow()
    return db.lookup(lambda conn: quote_on(conn, shopper_id, store_id, lines, moment))


def quote_on(
    conn: Connection,
    shopper_id: int,
    store_id: int,
    lines: Sequence[LineRequest],
    now: datetime,
) -> Quote:
    """quote() on the caller's connection."""
    _check_lines(lines)
    store = placing.store_facts(conn, store_id)
    shopper = placing.shopper_facts(conn, shopper_id)
    stocked = placing.price_lines(conn, store_id, lines)
    coming = on_the_way(conn, shopper_id, [line.priced.product_id for line in stocked], store)
    return quote_for(shopper, store, stocked, now, on_the_way=coming)


def _check_lines(lines: Sequence[LineRequest]) -> None:
    if not lines:
        raise InvalidRequest("no_lines", "a quote needs at least one line")
    for line in lines:
        rules.check_quantity(line.quantity)


def quote_for(
    shopper: placing.ShopperFacts,
    store: placing.StoreFacts,
    stocked: Sequence[placing.StockedLine],
    now: datetime,
    *,
    on_the_way: OnTheWay | None = None,
) -> Quote:
    """The read-back for priced lines: refuses lines the store cannot fill from stock."""
    quoted = []
    for line in stocked:
        item = line.priced
        if line.stock < item.quantity:
            raise OrderRefused("out_of_stock", f"not enough {item.sku} in stock")
        quoted.append(QuoteLine(item.sku, item.name, item.quantity, item.unit_price_minor))
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
        on_the_way=on_the_way,
        waits_for_approval=shopper.voice_approval,
    )


def on_the_way(
    conn: Connection, shopper_id: int, product_ids: Sequence[int], store: placing.StoreFacts
) -> OnTheWay | None:
    """How many of these products the shopper's open orders bring, and the first day one
    arrives (the carrier's day once it names one, else the store's promise); None: none."""
    rows = conn.execute(
        _COMING, {"shoppers": [shopper_id], "products": sorted(set(product_ids))}
    ).all()
    if not rows:
        return None
    days = [
        at.date() if at is not None else expected_arrival(created, store.lead_time_days)
        for _quantity, created, at in rows
    ]
    return OnTheWay(sum(row[0] for row in rows), min(days))


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
    """Find the product named in the store's catalog and quote it.

    A quote promises nothing (the yes re-prices in its own transaction), so its reads need
    no common snapshot.
    """
    moment = now or utcnow()

    def work(conn: Connection) -> NamedQuote:
        match = match_products(catalog_on(conn, store_id), query, sku_hints=sku_hints)
        if match.status != "found":
            return NamedQuote(match)
        line = LineRequest(match.product.sku, quantity)
        return NamedQuote(match, quote_on(conn, shopper_id, store_id, [line], moment))

    return db.lookup(work)
