"""The API's request and response bodies as pydantic models: the OpenAPI schemas come from here.

Response models describe the dicts of `orders.queries.resources`; every answer is checked
against them, so the document and the code cannot drift apart.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

OrderStatus = Literal["pending_approval", "placed", "shipped", "delivered", "cancelled"]
Channel = Literal["voice", "button", "appliance", "web", "api"]
Limit = Field(25, ge=1, le=100, description="Page size (1-100).")


class Strict(BaseModel):
    """A request body: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


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


class OrderList(BaseModel):
    """A page of orders, newest first; `next_before` fetches the next page."""

    orders: list[Order]
    next_before: str | None


class OrderQuery(BaseModel):
    """Filters and paging of the order list."""

    status: OrderStatus | None = None
    device: int | None = Field(None, ge=1, description="Only orders this device placed.")
    since: datetime | None = Field(None, description="Only orders created at or after.")
    before: str | None = Field(None, max_length=100, description="`next_before` of a page.")
    limit: int = Limit


class ShipRequest(Strict):
    """How the order ships: the carrier and its tracking number (and page)."""

    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=200)
    tracking_url: str | None = Field(None, max_length=2000, pattern=r"^https?://\S+$")


# --- tracking --------------------------------------------------------------------------------

CarrierStatus = Literal["in_transit", "out_for_delivery", "delivered", "exception", "returned"]


class TrackingEventRequest(Strict):
    """One carrier scan of a shipped order; `id` is the carrier's event id (replays are no-ops)."""

    id: str = Field(min_length=1, max_length=200)
    status: CarrierStatus
    occurred_at: AwareDatetime
    estimated_delivery: date | None = Field(None, description="The carrier's estimated day.")
    carrier: str | None = Field(None, min_length=1, max_length=64)
    tracking_number: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=200)


class TrackingEventResult(BaseModel):
    """The order after the scan; `duplicate`: the id was seen before; `delayed`: the day slipped."""

    order: Order
    expected_delivery: date | None
    delay_reason: str | None
    duplicate: bool
    delayed: bool
