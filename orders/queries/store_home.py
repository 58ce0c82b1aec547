"""A store's home page: today's figures, and one search over its orders, devices and products."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select

from orders.queries.devices import ActiveLink, low_supply
from orders.store.db import Database
from orders.store.model import Device, Order, Product, Store

# Statuses whose money the store keeps (a cancelled order earns nothing).
_EARNING = ("placed", "shipped", "delivered")
SEARCH_LIMIT = 10


@dataclass(frozen=True)
class TodayFigures:
    """What a merchant checks first thing: today's business and what needs attention."""

    since: datetime  # the store's local midnight, in UTC
    orders: int
    revenue_minor: int
    currency: str
    awaiting_approval: int
    devices_low: int
    deliveries_late: int


def today_figures(db: Database, store_id: int, now: datetime) -> TodayFigures:
    """Orders and revenue since the store's midnight; approvals, low devices, late deliveries."""
    with db.read() as session:
        store = session.get_one(Store, store_id)
        zone = ZoneInfo(store.time_zone)
        midnight = datetime.combine(now.astimezone(zone).date(), time(0), zone)
        today = (Order.store_id == store_id) & (Order.created_at >= midnight)
        orders = session.scalar(select(func.count()).where(today)) or 0
        revenue = session.scalar(
            select(func.coalesce(func.sum(Order.total_minor), 0)).where(
                today, Order.status.in_(_EARNING)
            )
        )
        awaiting = session.scalar(
            select(func.count()).where(
                Order.store_id == store_id, Order.status == "pending_approval"
            )
        )
        low = session.scalar(
            select(func.count(Device.id))
            .join(ActiveLink, (ActiveLink.device_id == Device.id) & (ActiveLink.status == "active"))
            .where(Device.store_id == store_id, low_supply())
        )
        late = session.scalar(
            select(func.count()).where(
                Order.store_id == store_id,
                Order.status == "shipped",
                or_(Order.expected_delivery_at < now, Order.delay_reason.is_not(None)),
            )
        )
        return TodayFigures(
            since=midnight, orders=orders, revenue_minor=int(revenue or 0),
            currency=store.currency, awaiting_approval=awaiting or 0, devices_low=low or 0,
            deliveries_late=late or 0,
        )  # fmt: skip


@dataclass(frozen=True)
class Found:
    """What one search found, each list capped at SEARCH_LIMIT."""

    orders: tuple[tuple[str, str, datetime], ...]  # (id, status, created)
    devices: tuple[tuple[int, str, str | None], ...]  # (id, serial, name)
    products: tuple[tuple[int, str, str], ...]  # (id, sku, name)

    @property
    def empty(self) -> bool:
        """True when nothing matched."""
        return not (self.orders or self.devices or self.products)


def search_store(db: Database, store_id: int, text: str) -> Found:
    """Orders by id prefix, devices by serial or name, products by SKU or name (any case)."""
    words = " ".join(text.split())[:100]
    if not words:
        return Found((), (), ())
    escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = "%" + escaped.lower() + "%"
    prefix = escaped + "%"  # order ids are URL-safe base64: `_` and `-` are part of them
    with db.read() as session:
        orders = session.execute(
            select(Order.id, Order.status, Order.created_at)
            .where(Order.store_id == store_id, Order.id.like(prefix, escape="\\"))
            .order_by(Order.created_at.desc())
            .limit(SEARCH_LIMIT)
        ).all()
        devices = session.execute(
            select(Device.id, Device.serial, Device.name)
            .where(
                Device.store_id == store_id,
                or_(
                    func.lower(Device.serial).like(like, escape="\\"),
                    func.lower(Device.name).like(like, escape="\\"),
                ),
            )
            .order_by(Device.id.desc())
            .limit(SEARCH_LIMIT)
        ).all()
        products = session.execute(
            select(Product.id, Product.sku, Product.name)
            .where(
                Product.store_id == store_id,
                or_(
                    Product.sku_folded.like(like, escape="\\"),
                    func.lower(Product.name).like(like, escape="\\"),
                ),
            )  # fmt: skip
            .order_by(Product.id)
            .limit(SEARCH_LIMIT)
        ).all()
    return Found(
        tuple((o.id, o.status, o.created_at) for o in orders),
        tuple((d.id, d.serial, d.name) for d in devices),
        tuple((p.id, p.sku, p.name) for p in products),
    )
