"""What a store's staff read and change: catalog, device models, devices, orders, low stock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.maintenance import ConditionSpec
from orders.queries.devices import (
    HISTORY_POINTS,
    ActiveLink,
    DeviceRow,
    device_query,
    low_supply,
    rows_from,
)
from orders.queries.pages import Page, clamp_limit, id_cursor, orders_page, page_of
from orders.queries.snapshots import OrderView
from orders.services import catalog
from orders.store.db import Database, utcnow
from orders.store.model import (
    Device,
    DeviceModel,
    Product,
    Store,
)

# Products with fewer units than this are on the low-stock list.
LOW_STOCK_BELOW = 10
DEVICE_STATUSES = ("active", "paused", "unlinked")
_ALIAS = re.compile(r"^[\w' .-]{1,60}$")

_Owned = TypeVar("_Owned", Product, DeviceModel, Device)


@dataclass(frozen=True)
class ProductView:
    """A catalog entry."""

    id: int
    sku: str
    name: str
    price_minor: int
    currency: str
    stock: int
    pack_size: int
    aliases: tuple[str, ...]
    active: bool
    low_stock_level: int = LOW_STOCK_BELOW
    archived: bool = False

    @property
    def low(self) -> bool:
        """True when on sale with fewer units than its low-stock level."""
        return self.active and not self.archived and self.stock < self.low_stock_level

    @classmethod
    def of(cls, product: Product) -> ProductView:
        """Snapshot a product row."""
        return cls(
            product.id, product.sku, product.name, product.price_minor, product.currency,
            product.stock, product.pack_size, tuple(product.aliases or ()), product.active,
            product.low_stock_level, product.archived_at is not None,
        )  # fmt: skip


@dataclass(frozen=True)
class ModelView:
    """A device model and the products its devices may order."""

    id: int
    name: str
    kind: str
    client_id: str
    test_mode: bool
    skus: tuple[str, ...]
    slots: tuple[str, ...]
    # (name, unit, capacity, refill SKU) per slot, for the API.
    slot_specs: tuple[tuple[str, str, float, str | None], ...] = ()
    security: str = "oscore"  # how its devices prove who they are: oscore | bearer
    slot_policies: tuple[str, ...] = ()  # each slot's default policy, in slot order
    # (name, kind, threshold, message, part SKU) per condition.
    conditions: tuple[tuple[str, str, float | None, str, str | None], ...] = ()

    @classmethod
    def of(cls, model: DeviceModel) -> ModelView:
        """Snapshot a model row (products and slots loaded)."""
        sku_of = {p.id: p.sku for p in model.products}
        return cls(
            model.id, model.name, model.kind, model.client_id, model.test_mode,
            tuple(sorted(p.sku for p in model.products)),
            tuple(f"{s.name} ({s.capacity:g} {s.unit})" for s in model.slots),
            tuple((s.name, s.unit, s.capacity, sku_of.get(s.product_id or 0))
                  for s in model.slots),
            model.security,
            tuple(s.policy for s in model.slots),
            tuple((c.name, c.kind, c.threshold, c.message, c.product.sku if c.product else None)
                  for c in model.conditions),
        )  # fmt: skip


@dataclass(frozen=True)
class DeviceFilter:
    """What the merchant's device list is narrowed to."""

    model_id: int | None = None
    status: str | None = None
    low_supply: bool = False
    serial: str | None = None


@dataclass(frozen=True)
class DeviceDetail:
    """One device with its supply history and recent orders."""

    row: DeviceRow
    orders: tuple[OrderView, ...]


def store_name(db: Database, store_id: int) -> str:
    """The store's display name."""
    with db.read() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise NotFound("not_found", "no such store")
        return store.name


def store_time_zone(db: Database, store_id: int | None = None) -> str:
    """The store's IANA time zone; without a store, the first store's (UTC when none)."""
    query = select(Store.time_zone).order_by(Store.id).limit(1)
    if store_id is not None:
        query = query.where(Store.id == store_id)
    with db.read() as session:
        return session.scalar(query) or "UTC"


def parse_aliases(text: str) -> list[str]:
    """Spoken aliases from comma- or line-separated text (lower-cased, de-duplicated)."""
    aliases: list[str] = []
    for part in re.split(r"[,\n]", text):
        alias = " ".join(part.split()).lower()
        if not alias:
            continue
        if not _ALIAS.match(alias):
            raise InvalidRequest("bad_alias", f"alias {alias[:60]!r} has odd characters")
        if alias not in aliases:
            aliases.append(alias)
    if len(aliases) > 20:
        raise InvalidRequest("bad_alias", "at most 20 aliases")
    return aliases


# --- catalog -------------------------------------------------------------------------------


def list_products(
    db: Database,
    store_id: int,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    low_only: bool = False,
    archived: bool | None = False,
) -> Page[ProductView]:
    """The store's products by id: archived ones only (True), none (False) or too (None);
    `low_only`: the low-stock list."""
    size = clamp_limit(limit)
    after = id_cursor(cursor)
    query = select(Product).where(Product.store_id == store_id)
    if archived is not None:
        shelved = Product.archived_at.is_not(None)
        query = query.where(shelved if archived else ~shelved)
    if low_only:
        query = query.where(Product.stock < Product.low_stock_level, Product.active.is_(True))
    if after is not None:
        query = query.where(Product.id > after)
    query = query.order_by(Product.id).limit(size + 1)
    with db.read() as session:
        rows = [ProductView.of(p) for p in session.scalars(query)]
    return page_of(rows, size, lambda p: str(p.id))


def low_stock(
    db: Database, store_id: int, *, cursor: str | None = None, limit: int | None = None
) -> Page[ProductView]:
    """Products on sale with fewer units than their own low-stock level."""
    return list_products(db, store_id, cursor=cursor, limit=limit, low_only=True)


def get_product(db: Database, store_id: int, product_id: int) -> ProductView:
    """One of the store's products."""
    with db.read() as session:
        return ProductView.of(_product(session, store_id, product_id))


def create_product(
    db: Database,
    store_id: int,
    *,
    sku: str,
    name: str,
    price_minor: int,
    stock: int,
    pack_size: int = 1,
    aliases: Sequence[str] = (),
    low_stock_level: int | None = None,
) -> ProductView:
    """Add a product to the store's catalog (SKUs are unique per store, in any letter case)."""
    _check_name(name)
    _check_low_level(low_stock_level)

    def work(session: Session) -> ProductView:
        store = _store(session, store_id)
        taken = session.scalar(
            select(Product.id).where(
                Product.store_id == store_id, Product.sku_folded == sku.lower()
            )
        )
        if taken is not None:
            raise InvalidRequest("sku_taken", "the store already has a product with that SKU")
        product = catalog.add_product(
            session, store, sku=sku, name=name, price_minor=price_minor, stock=stock,
            pack_size=pack_size, aliases=aliases,
        )  # fmt: skip
        if low_stock_level is not None:
            product.low_stock_level = low_stock_level
        session.flush()
        return ProductView.of(product)

    return db.run_write(work)


def update_product(
    db: Database,
    store_id: int,
    product_id: int,
    *,
    name: str,
    price_minor: int,
    stock: int,
    aliases: Sequence[str],
    active: bool,
    low_stock_level: int | None = None,
) -> ProductView:
    """Change a product's name, price, stock, aliases, availability or low-stock level."""
    _check_name(name)
    _check_low_level(low_stock_level)
    if price_minor < 0 or stock < 0:
        raise InvalidRequest("bad_product", "price and stock can't be negative")

    def work(session: Session) -> ProductView:
        product = _product(session, store_id, product_id)
        product.name = name
        product.price_minor = price_minor
        product.stock = stock
        product.aliases = list(aliases)
        product.active = active
        if low_stock_level is not None:
            product.low_stock_level = low_stock_level
        session.flush()
        return ProductView.of(product)

    return db.run_write(work)


# --- device models -------------------------------------------------------------------------


def list_models(
    db: Database, store_id: int, *, cursor: str | None = None, limit: int | None = None
) -> Page[ModelView]:
    """The store's device models by id."""
    size = clamp_limit(limit)
    after = id_cursor(cursor)
    query = select(DeviceModel).where(DeviceModel.store_id == store_id)
    if after is not None:
        query = query.where(DeviceModel.id > after)
    query = query.order_by(DeviceModel.id).limit(size + 1)
    with db.read() as session:
        rows = [ModelView.of(m) for m in session.scalars(query)]
    return page_of(rows, size, lambda m: str(m.id))


def get_model(db: Database, store_id: int, model_id: int) -> ModelView:
    """One of the store's device models."""
    with db.read() as session:
        return ModelView.of(_model(session, store_id, model_id))


def update_model(
    db: Database, store_id: int, model_id: int, *, skus: Sequence[str], test_mode: bool
) -> ModelView:
    """Set which products a model's devices may order, and its test mode."""

    def work(session: Session) -> ModelView:
        model = _model(session, store_id, model_id)
        products = list(
            session.scalars(
                select(Product).where(Product.store_id == store_id, Product.sku.in_(list(skus)))
            )
        )
        if len(products) != len(set(skus)):
            raise InvalidRequest("unknown_sku", "every SKU must be one of this store's products")
        refilled = {s.product_id for s in model.slots if s.product_id is not None}
        if not refilled <= {p.id for p in products}:
            raise InvalidRequest("slot_product", "a slot's refill product must stay allowed")
        model.products = products
        model.test_mode = test_mode
        session.flush()
        return ModelView.of(model)

    return db.run_write(work)


# --- devices -------------------------------------------------------------------------------


def list_devices(
    db: Database,
    store_id: int,
    filters: DeviceFilter = DeviceFilter(),
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[DeviceRow]:
    """Every device of the store, newest first, narrowed by `filters`."""
    if filters.status is not None and filters.status not in DEVICE_STATUSES:
        raise InvalidRequest("bad_status", f"status must be one of {', '.join(DEVICE_STATUSES)}")
    size = clamp_limit(limit)
    before = id_cursor(cursor)
    query = device_query().where(Device.store_id == store_id)
    if filters.model_id is not None:
        query = query.where(Device.model_id == filters.model_id)
    if filters.serial:
        query = query.where(Device.serial == filters.serial.strip())
    if filters.status == "unlinked":
        query = query.where(ActiveLink.id.is_(None))
    elif filters.status is not None:
        query = query.where(ActiveLink.id.is_not(None), ActiveLink.paused.is_(
            filters.status == "paused"))  # fmt: skip
    if filters.low_supply:
        query = query.where(low_supply())
    if before is not None:
        query = query.where(Device.id < before)
    query = query.order_by(Device.id.desc()).limit(size + 1)
    with db.read() as session:
        rows = rows_from(session, session.execute(query).all())
    return page_of(rows, size, lambda r: str(r.device_id))


def get_device(db: Database, store_id: int, device_id: int) -> DeviceDetail:
    """One of the store's devices, with supply history and its recent orders."""
    query = device_query().where(Device.store_id == store_id, Device.id == device_id)
    with db.read() as session:
        rows = rows_from(session, session.execute(query).all(), history=HISTORY_POINTS, runout=True)
    if not rows:
        raise NotFound("not_found", "no such device")
    recent = orders_page(db, store_id=store_id, device_id=device_id, limit=10)
    return DeviceDetail(rows[0], recent.items)


def set_device_test_mode(db: Database, store_id: int, device_id: int, test_mode: bool) -> None:
    """Switch one of the store's units to test orders, or back (its model's switch aside)."""

    def work(session: Session) -> None:
        device_in_store(session, store_id, device_id).test_mode = test_mode

    db.run_write(work)


# --- orders --------------------------------------------------------------------------------


def list_store_orders(
    db: Database,
    store_id: int,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
    test: bool | None = None,
) -> Page[OrderView]:
    """The store's orders, newest first, optionally of one status; `test` False leaves
    test orders out (they never ship), True lists only them."""
    return orders_page(db, store_id=store_id, status=status, cursor=cursor, limit=limit, test=test)


def review_threshold(db: Database, store_id: int) -> int | None:
    """The order total (minor units) from which the store approves orders itself (None: off)."""
    with db.read() as session:
        return _store(session, store_id).review_orders_over_minor


def set_review_threshold(db: Database, store_id: int, minor: int | None) -> None:
    """Hold new orders of at least `minor` for the store's approval (None: hold none)."""
    if minor is not None and minor < 0:
        raise InvalidRequest("bad_threshold", "the threshold cannot be negative")
    with db.write() as session:
        _store(session, store_id).review_orders_over_minor = minor


# --- helpers -------------------------------------------------------------------------------


def set_archived(db: Database, store_id: int, product_id: int, archived: bool) -> ProductView:
    """Archive a product (off sale, out of lists and choices; orders keep it) or bring it back."""

    def work(session: Session) -> ProductView:
        product = _product(session, store_id, product_id)
        product.archived_at = utcnow() if archived else None
        if archived:
            product.active = False
        session.flush()
        return ProductView.of(product)

    return db.run_write(work)


def _check_low_level(level: int | None) -> None:
    if level is not None and not 0 <= level <= 1_000_000:
        raise InvalidRequest("bad_low_stock_level", "the low-stock level is 0 to 1,000,000 units")


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("bad_name", "a name needs 1-200 characters")


def _store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound("not_found", "no such store")
    return store


def _in_store(
    session: Session, entity: type[_Owned], store_id: int, row_id: int, what: str
) -> _Owned:
    """The store's row of `entity`: another store's row is indistinguishable from a missing one."""
    row = session.get(entity, row_id)
    if row is None or row.store_id != store_id:
        raise NotFound("not_found", f"no such {what}")
    return row


def _product(session: Session, store_id: int, product_id: int) -> Product:
    return _in_store(session, Product, store_id, product_id, "product")


def add_model_slot(db: Database, store_id: int, model_id: int, spec: catalog.SlotSpec) -> ModelView:
    """Add a slot to a model (a printer gets its fourth ink); its refill product becomes allowed.

    Links made before keep their rules: a slot without a rule of its own follows the link's.
    """

    def work(session: Session) -> ModelView:
        model = _model(session, store_id, model_id)
        catalog.add_slots(session, model, [spec])
        session.flush()
        return ModelView.of(model)

    return db.run_write(work)


def add_model_condition(
    db: Database, store_id: int, model_id: int, spec: ConditionSpec
) -> ModelView:
    """Add a condition a model reports (a `descale` flag, a `filter_life` in %…)."""

    def work(session: Session) -> ModelView:
        model = _model(session, store_id, model_id)
        if spec.name in {s.name for s in model.slots} | {c.name for c in model.conditions}:
            raise InvalidRequest("bad_condition", f"this model already reports {spec.name!r}")
        store = session.get(Store, store_id)
        assert store is not None  # the model is the store's
        model.conditions.append(catalog.condition_of(session, store, spec))
        session.flush()
        return ModelView.of(model)

    return db.run_write(work)


def _model(session: Session, store_id: int, model_id: int) -> DeviceModel:
    return _in_store(session, DeviceModel, store_id, model_id, "device model")


def device_in_store(session: Session, store_id: int, device_id: int) -> Device:
    """The store's device (another store's device is not found)."""
    return _in_store(session, Device, store_id, device_id, "device")
