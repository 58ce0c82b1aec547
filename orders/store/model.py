"""Typed SQLAlchemy 2.0 models of the order domain; constraints live in the database too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from orders.domain.decision import new_order_id as new_order_id  # the default of Order.id
from orders.domain.tracking import CARRIER_STATUSES
from orders.store.db import UTCDateTime, utcnow

CHANNELS = ("voice", "button", "appliance", "web", "api")
STATUSES = ("pending_approval", "placed", "shipped", "delivered", "cancelled")
OPEN_STATUSES = ("pending_approval", "placed", "shipped")
HOLD_REASONS = ("price_changed", "product_changed")
TEST_SWEPT = ("pending_approval", "placed")  # a test order never ships: these end cancelled
DEVICE_KINDS = ("button", "appliance")
# alert: tell, never order; threshold: reorder at a level; predictive: before the predicted
# run-out; up_to: at the reorder level, order enough packs to reach `order_up_to`.
LINK_POLICIES = ("threshold", "predictive", "alert", "up_to")
# How a model's devices prove who they are on CoAP: OSCORE (RFC 8613) or a bearer token.
DEVICE_SECURITY = ("oscore", "bearer")
SLOT_UNITS = ("%", "count", "l", "g", "kg")
SLOT_POLICIES = ("threshold", "predictive")
# A shopper may also turn one slot of a multi-slot device off (it then never orders).
SLOT_RULE_POLICIES = (*SLOT_POLICIES, "off")
# flag: true when due (`vb`); percent: due at or below `threshold`; code: a non-zero error
# code (`v` or `vs`); counter: due at or above `threshold` (e.g. cycles since a descale).
CONDITION_KINDS = ("flag", "percent", "code", "counter")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` as SQL text: for CHECKs, partial indexes and predicates that
    must match them."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base shared by every package's tables (one metadata, one migration tree)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Store(Base):
    """A merchant's store: the tenant every product, device and order belongs to."""

    __tablename__ = "stores"
    __table_args__ = (
        CheckConstraint("cancel_window_minutes >= 0", name="cancel_window"),
        CheckConstraint("lead_time_days >= 0", name="lead_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    cancel_window_minutes: Mapped[int] = mapped_column(default=30)
    lead_time_days: Mapped[float] = mapped_column(Float, default=2.0)
    # IANA name; pages show times in it unless the viewer chose their own.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Orders of at least this total wait for the merchant's approval (None: none do).
    review_orders_over_minor: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _folded_sku(context: Any) -> str:
    return str(context.get_current_parameters()["sku"]).lower()


class Product(Base):
    """Something a store sells; price in integer minor units, stock never below zero."""

    __tablename__ = "products"
    __table_args__ = (
        # `tea-40` and `TEA-40` are one SKU, whatever the race between two requests.
        UniqueConstraint("store_id", "sku_folded", name="uq_products_store_sku_folded"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
        CheckConstraint("low_stock_level >= 0", name="low_stock_level_non_negative"),
        CheckConstraint("price_minor >= 0", name="price_non_negative"),
        CheckConstraint("pack_size > 0", name="pack_size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    # The SKU in lower case, kept by the ORM: the key uniqueness is checked on.
    sku_folded: Mapped[str] = mapped_column(String(64), default=_folded_sku)
    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(default=list)
    price_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(default=0)
    pack_size: Mapped[int] = mapped_column(default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Below this many units the product is on the store's low-stock list.
    low_stock_level: Mapped[int] = mapped_column(default=10, server_default="10")
    # Archived products leave the catalog and every choice; orders keep their lines.
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Shopper(Base):
    """A person who buys; spending caps and voice-purchase settings are theirs."""

    __tablename__ = "shoppers"
    __table_args__ = (CheckConstraint("voice_pin_failures >= 0", name="pin_failures"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # Notice kinds the shopper wants by e-mail too; None: the defaults (every kind).
    email_notices: Mapped[list[str] | None] = mapped_column(default=None)
    monthly_cap_minor: Mapped[int | None] = mapped_column(default=None)
    voice_pin_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    voice_pin_threshold_minor: Mapped[int | None] = mapped_column(default=None)
    voice_pin_failures: Mapped[int] = mapped_column(default=0)
    voice_locked_until: Mapped[datetime | None] = mapped_column(default=None)
    # On: every voice purchase waits for the shopper's approval on the web.
    voice_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Address(Base):
    """A shopper's delivery address; at most one is their default (the database says so)."""

    __tablename__ = "addresses"
    __table_args__ = (
        Index(
            "uq_addresses_default_shopper",
            "shopper_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shopper_id: Mapped[int] = mapped_column(
        ForeignKey("shoppers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    line1: Mapped[str] = mapped_column(String(200))
    line2: Mapped[str | None] = mapped_column(String(200), default=None)
    postcode: Mapped[str | None] = mapped_column(String(20), default=None)
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100), default=None)
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2, checked on entry
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


device_model_products = Table(
    "device_model_products",
    Base.metadata,
    Column("model_id", ForeignKey("device_models.id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
)


class DeviceModel(Base):
    """A kind of device a store supports (a button, a printer…), with its OAuth client id."""

    __tablename__ = "device_models"
    __table_args__ = (
        CheckConstraint(sql_in("kind", DEVICE_KINDS), name="kind"),
        CheckConstraint(sql_in("security", DEVICE_SECURITY), name="security"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    # Its maker provisions a per-unit secret: linking then needs it, not just the serial.
    requires_unit_secret: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Models made before OSCORE keep bearer tokens; create_device_model defaults to oscore.
    security: Mapped[str] = mapped_column(
        String(8), default="oscore", server_default=text("'bearer'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    products: Mapped[list[Product]] = relationship(secondary=device_model_products)
    slots: Mapped[list[DeviceModelSlot]] = relationship(
        back_populates="model", order_by="DeviceModelSlot.id", cascade="all, delete-orphan"
    )
    conditions: Mapped[list[DeviceModelCondition]] = relationship(
        back_populates="model", order_by="DeviceModelCondition.id", cascade="all, delete-orphan"
    )


class DeviceModelSlot(Base):
    """A consumable an appliance model measures (e.g. a printer's `black_ink` in `%`)."""

    __tablename__ = "device_model_slots"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        CheckConstraint(sql_in("unit", SLOT_UNITS), name="unit"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("units_per_pack > 0", name="units_per_pack_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(8))
    capacity: Mapped[float] = mapped_column(Float)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)
    units_per_pack: Mapped[float] = mapped_column(Float, default=1.0)
    # What a link of a multi-slot device starts with for this slot, before the shopper chooses.
    policy: Mapped[str] = mapped_column(
        String(16), default="threshold", server_default=text("'threshold'")
    )

    model: Mapped[DeviceModel] = relationship(back_populates="slots")


class DeviceModelCondition(Base):
    """A fault or service condition a model reports in SenML, and what it suggests."""

    __tablename__ = "device_model_conditions"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        CheckConstraint(sql_in("kind", CONDITION_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(String(200))
    # The part that fixes it (a descaler, a filter), offered as a suggested order.
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)

    model: Mapped[DeviceModel] = relationship(back_populates="conditions")
    product: Mapped[Product | None] = relationship()


class Device(Base):
    """One physical device, identified by its model and serial."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("model_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id", ondelete="CASCADE"))
    serial: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)
    # The merchant switched this one unit to test orders (its model may be in test mode too).
    test_mode: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    model: Mapped[DeviceModel] = relationship()


class DeviceLink(Base):
    """A device linked to a shopper in a store: what it orders and the shopper's rules for it."""

    __tablename__ = "device_links"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(sql_in("status", ("active", "unlinked")), name="status"),
        CheckConstraint(sql_in("policy", LINK_POLICIES), name="policy"),
        CheckConstraint("risk > 0 AND risk < 1", name="risk"),
        CheckConstraint("price_tolerance_minor >= 0", name="price_tolerance"),
        # One active link per device, whatever the concurrency.
        Index(
            "uq_device_links_active_device",
            "device_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    shopper_id: Mapped[int] = mapped_column(ForeignKey("shoppers.id"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)
    quantity: Mapped[int] = mapped_column(default=1)
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    per_order_cap_minor: Mapped[int | None] = mapped_column(default=None)
    monthly_cap_minor: Mapped[int | None] = mapped_column(default=None)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # A vacation: no orders before this moment, then the link orders again by itself.
    paused_until: Mapped[datetime | None] = mapped_column(default=None)
    # The shopper's name for the device under this link (a next owner never sees it).
    name: Mapped[str | None] = mapped_column(String(100), default=None)
    # The level `up_to` orders up to, in the slot's unit.
    order_up_to: Mapped[float | None] = mapped_column(Float, default=None)
    # Opt-in: once a parcel is this many days late, order one replacement (None: never).
    late_reorder_days: Mapped[float | None] = mapped_column(Float, default=None)
    policy: Mapped[str] = mapped_column(String(16), default="threshold")
    reorder_point: Mapped[float | None] = mapped_column(Float, default=None)
    # Defaults that beat fixed reorder points in bench/replenish_sim.py (bench/README.md).
    risk: Mapped[float] = mapped_column(Float, default=0.003)
    # A year: each delivery fills the slot, unless a year's use is less than a slotful.
    cover_days: Mapped[float] = mapped_column(Float, default=365.0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    unlinked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Where its orders ship; None: the shopper's default address at the time of the order.
    address_id: Mapped[int | None] = mapped_column(
        ForeignKey("addresses.id", ondelete="SET NULL"), default=None
    )
    # What the shopper last saw and agreed to (at link time, or approving an order): a device
    # order for another product, or dearer by more than the tolerance, waits for approval.
    consented_product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id"), default=None
    )
    consented_price_minor: Mapped[int | None] = mapped_column(default=None)
    price_tolerance_minor: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    # The shopper lets a reported fault place a suggested part order (waiting for approval).
    maintenance_orders: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )

    device: Mapped[Device] = relationship()
    product: Mapped[Product | None] = relationship(foreign_keys=[product_id])
    slot_rules: Mapped[list[DeviceLinkSlot]] = relationship(
        order_by="DeviceLinkSlot.id", cascade="all, delete-orphan"
    )


class DeviceLinkSlot(Base):
    """The shopper's rule for one slot of a multi-slot device (a printer's cyan ink)."""

    __tablename__ = "device_link_slots"
    __table_args__ = (
        UniqueConstraint("link_id", "slot"),
        CheckConstraint(sql_in("policy", SLOT_RULE_POLICIES), name="policy"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("device_links.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str] = mapped_column(String(16), default="threshold")
    reorder_point: Mapped[float | None] = mapped_column(Float, default=None)
    quantity: Mapped[int] = mapped_column(default=1)


class DeviceFault(Base):
    """A condition a device reported, from when it was raised until it clears.

    At most one open row per device and condition: the notice is not repeated while it lasts.
    """

    __tablename__ = "device_faults"
    __table_args__ = (
        Index(
            "uq_device_faults_open",
            "device_id",
            "condition",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_links.id", ondelete="SET NULL"), default=None
    )
    condition: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(64), default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), default=None
    )
    # The suggested part order, when the link allowed one.
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), default=None
    )
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)


class Press(Base):
    """Every press a device sent under a link, once: (link, boot, seq) is its identity.

    Per link, not per device: a device linked anew counts its presses afresh, and never
    answers with its previous owner's orders.
    """

    __tablename__ = "presses"
    __table_args__ = (UniqueConstraint("device_id", "link_id", "boot", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("device_links.id"), default=None)
    boot: Mapped[str] = mapped_column(String(64), default="")
    # 64-bit: a device's counter may be anything check_press accepts (below 2**63);
    # SQLite's INTEGER is 64-bit already.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    result: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(Base):
    """An order in one store; prices are captured at order time."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(sql_in("channel", CHANNELS), name="channel"),
        CheckConstraint(sql_in("status", STATUSES), name="status"),
        CheckConstraint("total_minor >= 0", name="total_non_negative"),
        CheckConstraint(
            f"hold_reason IS NULL OR {sql_in('hold_reason', HOLD_REASONS)}", name="hold_reason"
        ),
        # The in-progress guard: one open order per link and product, even under races.
        Index(
            "uq_orders_open_device_product",
            "device_id",
            "link_id",
            "device_product_id",
            unique=True,
            sqlite_where=text(f"device_id IS NOT NULL AND {sql_in('status', OPEN_STATUSES)}"),
            postgresql_where=text(f"device_id IS NOT NULL AND {sql_in('status', OPEN_STATUSES)}"),
        ),
        # The household guard: one open order per shopper and product among the orders nobody
        # asked for on purpose (presses, appliances, plain voice purchases), across processes.
        Index(
            "uq_orders_open_shopper_product",
            "shopper_id",
            "held_product_id",
            unique=True,
            sqlite_where=text(f"held_product_id IS NOT NULL AND {sql_in('status', OPEN_STATUSES)}"),
            postgresql_where=text(
                f"held_product_id IS NOT NULL AND {sql_in('status', OPEN_STATUSES)}"
            ),
        ),
        Index("ix_orders_shopper_created", "shopper_id", "created_at"),
        Index("ix_orders_store_created", "store_id", "created_at"),
        Index("ix_orders_device_created", "device_id", "created_at"),
        # What the worker's sweep of lapsed test orders reads: few rows, and only those.
        Index(
            "ix_orders_test_open",
            "cancel_until",
            sqlite_where=text(f"test AND {sql_in('status', TEST_SWEPT)}"),
            postgresql_where=text(f"test AND {sql_in('status', TEST_SWEPT)}"),
        ),
        # A carrier aggregator names the parcel, not the order.
        Index("ix_orders_store_tracking_ref", "store_id", "tracking_ref"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_order_id)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), default=None)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("device_links.id"), default=None)
    device_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)
    # The product this order holds for its shopper while open (the household guard); None
    # for an order asked for on purpose (web, API, a voice yes to "one is on the way").
    held_product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    total_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancel_until: Mapped[datetime]
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(16), default=None)
    # Who a pending_approval order waits for: `shopper` (the link asks first) or `merchant`.
    approval_by: Mapped[str | None] = mapped_column(String(16), default=None)
    tracking_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    carrier: Mapped[str | None] = mapped_column(String(100), default=None)
    tracking_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # The carrier's latest estimate; None until a carrier gives one (the store's promise holds).
    expected_delivery_at: Mapped[datetime | None] = mapped_column(default=None)
    delay_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    # The address it ships to, copied at placement: editing the address never moves an order.
    ship_name: Mapped[str | None] = mapped_column(String(200), default=None)
    ship_line1: Mapped[str | None] = mapped_column(String(200), default=None)
    ship_city: Mapped[str | None] = mapped_column(String(100), default=None)
    ship_country: Mapped[str | None] = mapped_column(String(2), default=None)
    ship_line2: Mapped[str | None] = mapped_column(String(200), default=None)
    ship_postcode: Mapped[str | None] = mapped_column(String(20), default=None)
    ship_region: Mapped[str | None] = mapped_column(String(100), default=None)
    ship_phone: Mapped[str | None] = mapped_column(String(32), default=None)
    # A test order (its device or model is in test mode): takes no stock, spends nothing,
    # never ships, and cancels itself when its cancel window ends.
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Why it waits for approval beyond the link's own rule (`price_changed`, `product_changed`),
    # and what the shopper had agreed to before: the pages and events show old and new.
    hold_reason: Mapped[str | None] = mapped_column(String(24), default=None)
    consented_sku: Mapped[str | None] = mapped_column(String(64), default=None)
    consented_price_minor: Mapped[int | None] = mapped_column(default=None)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    """One product in an order, at the price it had when ordered."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_minor >= 0", name="unit_price_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price_minor: Mapped[int]
    line_total_minor: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderEvent(Base):
    """The outbox: one row per order change, written in the change's own transaction."""

    __tablename__ = "order_events"
    __table_args__ = (
        Index(
            "ix_order_events_unpublished",
            "id",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for events about something else than an order (device.linked, stock.low…).
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)


WEBHOOK_DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookEndpoint(Base):
    """A merchant's URL that receives the store's events, signed with its own secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Event types this endpoint wants; empty: every type.
    events: Mapped[list[str]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set at the first failure after a success; an endpoint failing long enough is disabled.
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    disabled_reason: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event to one endpoint: its attempts, when to try next, and how the last one went."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        CheckConstraint(sql_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
        # What the dispatcher claims: pending rows that are due.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # Per endpoint, a subject's events go out in order: the earlier pending one first.
        Index(
            "ix_webhook_deliveries_pending_order",
            "endpoint_id",
            "ordering_key",
            "event_id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("order_events.id", ondelete="CASCADE"))
    # What the event is about (an order's id, `device:7`…): per endpoint, the events of one
    # subject go out in order.
    ordering_key: Mapped[str | None] = mapped_column(String(48), default=None)
    type: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    # A short prefix of the response body (or the error), never the whole body.
    last_response: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookAlert(Base):
    """A low level already announced (`stock.low`, `supply.low`), until it recovers; and the
    scan's cursor over supply readings (kind `cursor`)."""

    __tablename__ = "webhook_alerts"
    __table_args__ = (UniqueConstraint("kind", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    subject: Mapped[str] = mapped_column(String(200))
    last_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrackingEvent(Base):
    """One carrier scan of a shipped order, once: (order, source, external id) is its identity."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        UniqueConstraint("order_id", "source", "external_id"),
        CheckConstraint(sql_in("status", CARRIER_STATUSES), name="status"),
        Index("ix_tracking_events_order_occurred", "order_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))  # api | easypost
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime]
    estimated_delivery_at: Mapped[datetime | None] = mapped_column(default=None)
    description: Mapped[str | None] = mapped_column(String(200), default=None)
    carrier: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CarrierHook(Base):
    """A store's shared secret for one carrier aggregator's signed webhooks."""

    __tablename__ = "carrier_hooks"

    store_id: Mapped[int] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True
    )
    aggregator: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Kept as given: verifying an HMAC needs the secret itself, not a hash of it.
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupplyReading(Base):
    """One level an appliance reported for one of its slots."""

    __tablename__ = "supply_readings"
    __table_args__ = (
        Index("ix_supply_readings_device_slot_at", "device_id", "slot", "measured_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(8))
    measured_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotentRequest(Base):
    """A create request an API client sent with an `Idempotency-Key`, and the answer it got.

    Unique per client and key, so two racing requests with one key create one thing.
    """

    __tablename__ = "idempotent_requests"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Null while the first request is still being answered.
    status: Mapped[int | None] = mapped_column(default=None)
    body: Mapped[str | None] = mapped_column(Text, default=None)
    location: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class StockAdjustment(Base):
    """A change of a product's stock by hand or by the store's systems, with its reason."""

    __tablename__ = "stock_adjustments"
    __table_args__ = (
        CheckConstraint("delta <> 0", name="delta_nonzero"),
        CheckConstraint("stock_after >= 0", name="stock_after_non_negative"),
        Index("ix_stock_adjustments_product_id_id", "product_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    delta: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200))
    stock_after: Mapped[int]
    # Who made it: an API client id, or "web" for the dashboard.
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkRuleChange(Base):
    """One change of a link's rule: who, when, and the value before and after (as shown)."""

    __tablename__ = "link_rule_changes"
    __table_args__ = (Index("ix_link_rule_changes_link_id_id", "link_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("device_links.id", ondelete="CASCADE"))
    # Who: `shopper` on the web, or an API client id; and the account behind it, if any.
    actor: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(default=None)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(200), default=None)
    new_value: Mapped[str | None] = mapped_column(String(200), default=None)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


NOTICE_KINDS = (
    "order_placed",
    "approval_needed",
    "order_shipped",
    "order_delayed",
    "order_delivered",
    "supply_low",
    "link_attempted",
    "voice_locked",
)
SEND_STATUSES = ("none", "pending", "sent", "failed")


class Notification(Base):
    """A notice to one shopper: shown in the app, and sent by e-mail or Alexa when chosen."""

    __tablename__ = "notifications"
    __table_args__ = (
        # One notice per event and shopper, however often the event is looked at.
        UniqueConstraint("event_id", "shopper_id"),
        CheckConstraint(sql_in("kind", NOTICE_KINDS), name="kind"),
        CheckConstraint(sql_in("email_status", SEND_STATUSES), name="email_status"),
        CheckConstraint(sql_in("alexa_status", SEND_STATUSES), name="alexa_status"),
        Index("ix_notifications_shopper_id_id", "shopper_id", "id"),
        Index(
            "ix_notifications_unread",
            "shopper_id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
        Index(
            "ix_notifications_sending",
            "next_send_at",
            sqlite_where=text("email_status = 'pending' OR alexa_status = 'pending'"),
            postgresql_where=text("email_status = 'pending' OR alexa_status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shopper_id: Mapped[int] = mapped_column(ForeignKey("shoppers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("order_events.id", ondelete="SET NULL"), default=None
    )
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), default=None
    )
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), default=None
    )
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
    email_status: Mapped[str] = mapped_column(String(16), default="none")
    alexa_status: Mapped[str] = mapped_column(String(16), default="none")
    send_attempts: Mapped[int] = mapped_column(default=0)
    next_send_at: Mapped[datetime | None] = mapped_column(default=None)
