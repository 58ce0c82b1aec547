"""The API's request and response bodies as pydantic models: the OpenAPI schemas come from here.

Response models describe the dicts of `orders.queries.resources`; every answer is checked
against them, so the document and the code cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

OrderStatus = Literal["pending_approval", "placed", "shipped", "delivered", "cancelled"]
Channel = Literal["voice", "button", "appliance", "web", "api"]
DeviceStatus = Literal["active", "paused", "unlinked"]
DeviceKind = Literal["button", "appliance"]
SlotUnit = Literal["%", "count", "l", "g", "kg"]
SlotPolicy = Literal["threshold", "predictive"]
ConditionKind = Literal["flag", "percent", "code", "counter"]
Limit = Field(25, ge=1, le=100, description="Page size (1-100).")
# A query parameter that may be left out (its schema has no `null`: a URL cannot say null).
Omitted = SkipJsonSchema[None]
# Text a person typed: one line without control characters (PostgreSQL refuses NUL in
# text), and not blank (the services strip it).
_TEXT = r"[^\x00-\x1f\x7f-\x9f]"
Line = rf"^{_TEXT}*[^\s\x00-\x1f\x7f-\x9f]{_TEXT}*$"
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
# Page cursors: a row id, or (newest-first orders) microseconds and an order id.
IdCursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
TimeCursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,16}\.[A-Za-z0-9_-]{1,64}$")]
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value: object) -> object:
    """Only RFC 3339 text (pydantic alone would take `0` as a Unix time)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("an RFC 3339 date-time with an offset, e.g. 2026-12-01T08:00:00Z")
    return value


Rfc3339 = Annotated[datetime, BeforeValidator(_rfc3339)]


def text(longest: int, shortest: int = 1) -> type[str]:
    """A one-line text field of `shortest`..`longest` characters."""
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(min_length=shortest, max_length=longest, pattern=Line)
    ]


class Strict(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    """An RFC 9457 problem: `error` is the machine-readable word."""

    type: str
    title: str
    status: int
    error: str
    detail: str | None = None
    reason: str | None = None
    errors: list[dict[str, object]] | None = None


# --- orders ----------------------------------------------------------------------------------


class OrderLine(BaseModel):
    """One product in an order, at the price it had when ordered."""

    sku: str
    name: str
    quantity: int
    unit_price_minor: int


class ShipTo(BaseModel):
    """The address an order ships to, as it was when the order was placed."""

    name: str
    line1: str
    line2: str | None = None
    postcode: str | None = None
    city: str
    region: str | None = None
    country: str
    phone: str | None = None


class Shipment(BaseModel):
    """How a shipped order travels."""

    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None


class AgreedLine(BaseModel):
    """A product and its unit price."""

    sku: str | None
    unit_price_minor: int | None


class OrderHold(BaseModel):
    """A device order held for approval: `price_changed` or `product_changed`."""

    reason: Literal["price_changed", "product_changed"]
    was: AgreedLine
    now: AgreedLine


class Order(BaseModel):
    """An order (`data` of `order.*` webhook events too)."""

    id: str
    status: OrderStatus
    channel: Channel
    lines: list[OrderLine]
    total_minor: int
    currency: str
    created: datetime
    updated: datetime
    cancel_until: datetime
    device_id: int | None
    ship_to: ShipTo | None
    shipment: Shipment | None
    test: bool = Field(
        description="A test order (its device or model is in test mode): never ships, "
        "takes no stock, spends nothing, and cancels itself when its cancel window ends."
    )
    hold: OrderHold | None = Field(
        description="Why it waits for the shopper's approval beyond their own rule, "
        "with what they had agreed to (`was`) and what it asks (`now`)."
    )
    approval_by: Literal["shopper", "merchant"] | None = Field(
        description="While `pending_approval`, who it waits for: its shopper's consent, or "
        "the store's review (approve or reject it with `/approve`, `/reject`); else null."
    )


class OrderList(BaseModel):
    """A page of orders, newest first; `next_before` fetches the next page."""

    orders: list[Order]
    next_before: str | None


class OrderQuery(BaseModel):
    """Filters and paging of the order list."""

    status: OrderStatus | Omitted = None
    device: RowId | Omitted = Field(None, description="Placed by this device.")
    since: Rfc3339 | Omitted = Field(None, description="Created at or after this time.")
    before: TimeCursor | Omitted = Field(None, description="`next_before` of the previous page.")
    limit: int = Limit


class ShipRequest(Strict):
    """How the order ships: the carrier and its tracking number (and page)."""

    carrier: text(100)
    tracking_number: text(200)
    tracking_url: str | None = Field(None, max_length=2000, pattern=r"^https?://[!-~]+$")


# --- catalog ---------------------------------------------------------------------------------

# Prices are INTEGER minor units.
Price = Field(ge=0, le=2**31 - 1, description="In minor units of the store's currency.")
# ASCII: a JSON Schema `\w` is ASCII-only while Python's is not, and the two must agree.
Alias = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_' .-]{1,60}$")]


class Product(BaseModel):
    """A catalog entry; archived products have `active` false and are not ordered."""

    id: int
    sku: str
    name: str
    price_minor: int
    currency: str
    stock: int
    pack_size: int
    aliases: list[str]
    active: bool
    low_stock_level: int = Field(description="Below this many units it is on the low-stock list.")
    archived: bool


class ProductList(BaseModel):
    """A page of products by id; `next_cursor` fetches the next page."""

    products: list[Product]
    next_cursor: str | None


class ProductQuery(BaseModel):
    """Paging of the product list."""

    cursor: IdCursor | Omitted = Field(None, description="`next_cursor` of the previous page.")
    limit: int = Limit


class NewProduct(Strict):
    """A product to add to the catalog (SKUs are unique per store)."""

    sku: Sku
    name: text(200)
    price_minor: int = Price
    stock: int = Field(0, ge=0, le=10**9)
    pack_size: int = Field(1, ge=1, le=10**6)
    aliases: list[Alias] = Field(default_factory=list, max_length=20)
    low_stock_level: int = Field(10, ge=0, le=10**6)


class ProductChange(Strict):
    """What to change of a product; fields left out (or null) stay as they are."""

    name: text(200) | None = None
    price_minor: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    pack_size: Annotated[int, Field(ge=1, le=10**6)] | None = None
    aliases: Annotated[list[Alias], Field(max_length=20)] | None = None
    low_stock_level: Annotated[int, Field(ge=0, le=10**6)] | None = None


class NewStockAdjustment(Strict):
    """`+n` adds n units, `-n` removes n; the reason is kept with the change."""

    delta: int = Field(
        ge=-(10**9),
        le=10**9,
        description="Units added (+) or removed (-); never 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: text(200)


class StockAdjustment(BaseModel):
    """One recorded change of a product's stock."""

    id: int
    product_id: int
    sku: str
    delta: int
    reason: str
    stock_after: int
    created: datetime


class StockAdjustmentList(BaseModel):
    """A page of a product's stock adjustments, newest first."""

    adjustments: list[StockAdjustment]
    next_cursor: str | None


class PageQuery(BaseModel):
    """Paging of a list."""

    cursor: IdCursor | Omitted = Field(None, description="`next_cursor` of the previous page.")
    limit: int = Limit


# --- devices ---------------------------------------------------------------------------------


class Slot(BaseModel):
    """A consumable an appliance model measures."""

    name: str
    unit: SlotUnit
    capacity: float
    sku: str | None
    policy: SlotPolicy = Field("threshold", description="What a new link starts with.")


class Condition(BaseModel):
    """A fault or service condition the model reports in SenML, and what it suggests."""

    name: str
    kind: ConditionKind
    threshold: float | None
    message: str
    sku: str | None = Field(description="The part suggested when it is reported.")


class DeviceModel(BaseModel):
    """A kind of device the store supports; its devices link with `client_id`."""

    id: int
    name: str
    kind: DeviceKind
    client_id: str
    test_mode: bool
    security: Literal["oscore", "bearer"] = Field(
        description="oscore: per-device OSCORE contexts (RFC 8613); bearer: a token per payload"
    )
    skus: list[str]
    slots: list[Slot]
    conditions: list[Condition] = Field(default_factory=list)


class DeviceModelList(BaseModel):
    """A page of device models by id."""

    device_models: list[DeviceModel]
    next_cursor: str | None


class NewSlot(Strict):
    """The slot an appliance model reports (e.g. `black_ink` in `%`)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
    unit: SlotUnit
    capacity: float = Field(gt=0, le=10**6)
    sku: Sku | None = None
    units_per_pack: float = Field(1.0, gt=0, le=10**6)
    policy: SlotPolicy = "threshold"


class NewCondition(Strict):
    """A condition the model reports (`descale` flag, `filter_life` %, `error` code…)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
    kind: ConditionKind
    message: text(200)
    threshold: float | None = Field(
        None, ge=0, le=10**9, description="percent: due at or below; counter: at or above."
    )
    sku: Sku | None = Field(None, description="The part a fault suggests.")


class NewDeviceModel(Strict):
    """A device model to add; a public OAuth client is made for it."""

    name: text(200)
    kind: DeviceKind
    skus: list[Sku] = Field(default_factory=list, max_length=50)
    slot: NewSlot | None = None
    slots: list[NewSlot] = Field(
        default_factory=list, max_length=32, description="Several slots (a printer's inks)."
    )
    conditions: list[NewCondition] = Field(default_factory=list, max_length=32)
    test_mode: bool = False
    # New models protect their devices with OSCORE; bearer is for devices that cannot.
    security: Literal["oscore", "bearer"] = "oscore"


class ModelRef(BaseModel):
    """The model of a device."""

    id: int
    name: str
    kind: DeviceKind


class Supply(BaseModel):
    """One slot's latest level and its predicted run-out."""

    slot: str
    unit: str
    capacity: float
    level: float | None
    measured_at: datetime | None
    low: bool
    rate_per_day: float | None
    runout_at: datetime | None


class Device(BaseModel):
    """A device of the store, its link status and its supply levels."""

    id: int
    serial: str
    name: str | None
    model: ModelRef
    status: DeviceStatus
    product_sku: str | None
    linked_at: datetime | None
    last_seen_at: datetime | None
    low_supply: bool
    supplies: list[Supply]
    test_mode: bool = Field(description="This unit was switched to test orders.")
    places_test_orders: bool = Field(
        description="Its orders are test orders: its own switch or its model's `test_mode`."
    )


class DeviceChange(Strict):
    """What the store changes on one unit."""

    test_mode: bool = Field(
        description="Switch this unit to test orders (never shipped, no stock, no spending)."
    )


class DeviceList(BaseModel):
    """A page of devices, newest first; `next_cursor` fetches the next page."""

    devices: list[Device]
    next_cursor: str | None


class DeviceQuery(BaseModel):
    """Filters and paging of the device list."""

    model: RowId | Omitted = Field(None, description="Of this device model.")
    status: DeviceStatus | Omitted = None
    low_supply: bool = Field(False, description="Only devices with a slot at 20% or less.")
    cursor: IdCursor | Omitted = Field(None, description="`next_cursor` of the previous page.")
    limit: int = Limit


# --- tracking --------------------------------------------------------------------------------

CarrierStatus = Literal["in_transit", "out_for_delivery", "delivered", "exception", "returned"]


class TrackingEventRequest(Strict):
    """One carrier scan of a shipped order; `id` is the carrier's event id (replays are no-ops)."""

    id: text(200)
    status: CarrierStatus
    # JSON has no time type: these two are parsed from RFC 3339 text despite `strict`.
    occurred_at: AwareDatetime = Field(strict=False, description="When the carrier scanned it.")
    estimated_delivery: date | None = Field(
        None, strict=False, description="The carrier's estimated delivery day."
    )
    carrier: text(100) | None = None
    tracking_number: text(200) | None = None
    description: text(200, 0) | None = None


class TrackingEventResult(BaseModel):
    """The order after the scan; `duplicate`: the id was seen before; `delayed`: the day slipped."""

    order: Order
    expected_delivery: date | None
    delay_reason: str | None
    duplicate: bool
    delayed: bool
