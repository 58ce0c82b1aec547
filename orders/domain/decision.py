"""Deciding a placement: facts read beforehand in, the rows to write or a refusal out.

Every channel places orders through `decide`: the web and API (`services.place_checked`),
the voice yes, appliance telemetry and the hub's press batch. Callers read the facts (one
order at a time, or a batch in bulk), call `decide`, and write what it returns. No I/O here:
a new rule is one more step in `decide`, and a new fact one more field of `Facts`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from orders.domain import ops, rules
from orders.domain.addresses import ShipTo
from orders.domain.errors import (
    REFUSAL_REASONS,
    DomainError,
    InvalidRequest,
    NotFound,
    OrderRefused,
)

Consent = Literal["none", "pin", "pin_not_set", "locked"]
ApprovalBy = Literal["shopper", "merchant"]

# The channels whose orders nobody asked for on purpose: one open order per shopper and
# product among them (the household guard). The web and the API order more on purpose.
HELD_CHANNELS = ("voice", "button", "appliance")


def new_order_id() -> str:
    """An unguessable opaque order id (128 random bits)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class LineRequest:
    """A product and how many of it."""

    sku: str
    quantity: int


@dataclass(frozen=True)
class ShopperFacts:
    """What ordering and voice consent need to know about a shopper."""

    id: int
    monthly_cap_minor: int | None
    voice_pin_hash: str | None
    voice_pin_threshold_minor: int | None
    voice_locked_until: datetime | None
    deleted: bool = False
    voice_approval: bool = False  # voice purchases wait for approval on the web


@dataclass(frozen=True)
class StoreFacts:
    """What an order needs to know about its store."""

    id: int
    name: str
    currency: str
    cancel_window_minutes: int
    lead_time_days: float
    review_orders_over_minor: int | None = None  # orders this large wait for the merchant


@dataclass(frozen=True)
class LinkFacts:
    """A device's active link: who it orders for and the limits the shopper set on it."""

    id: int
    shopper_id: int
    store_id: int
    paused: bool
    approval_required: bool
    per_order_cap_minor: int | None
    monthly_cap_minor: int | None
    device_id: int
    address_id: int | None = None  # the address it ships to (None: the shopper's default)
    paused_until: datetime | None = None  # a vacation: no orders before then
    test: bool = False  # its device or the device's model is in test mode
    # What the shopper agreed to (None: nothing recorded, no guard) and how much dearer may go.
    consented_product_id: int | None = None
    consented_sku: str | None = None
    consented_price_minor: int | None = None
    price_tolerance_minor: int = 0


@dataclass(frozen=True)
class StockedLine:
    """A priced line, the stock on hand when it was read, and whether it is still sold."""

    priced: rules.PricedLine
    stock: int
    active: bool = True


@dataclass(frozen=True)
class Ask:
    """What is asked, beside the facts: by which channel, under which key, from which device."""

    channel: str
    idempotency_key: str | None = None
    device_id: int | None = None  # a device orders under its active link
    quoted_total_minor: int | None = None  # the total read back to the shopper, if one was
    pin_verified: bool | None = None  # voice consent: None when the channel asks for none
    suggested: bool = False  # a device's suggestion (a part for a fault): waits for the shopper
    on_purpose: bool = False  # a yes to "one is already on the way": more, past the guard

    def holds(self) -> bool:
        """Whether the order asked for holds its product for the household while open."""
        return self.channel in HELD_CHANNELS and not self.on_purpose


@dataclass(frozen=True)
class Facts:
    """Everything one placement is decided on, read beforehand in its transaction.

    Read per link, never per device row: `open_order` and the spending are the current
    link's, so a re-linked device never answers with its previous owner's orders.
    """

    shopper: ShopperFacts
    store: StoreFacts
    lines: tuple[StockedLine, ...]  # empty: a device whose link names no product
    link: LinkFacts | None = None  # the asking device's active link (None: not linked)
    open_order: str | None = None  # the link's open order for its product (in-progress guard)
    spent_link: int = 0  # this month's spending of the link, in the store's currency
    spent_shopper: int = 0  # this month's spending of the shopper, in the store's currency
    ship_to: ShipTo | None = None  # the link's address, else the shopper's default
    household_open: str | None = None  # the shopper's oldest open order of a line's product


@dataclass(frozen=True)
class Hold:
    """Why a device order waits for the shopper beyond the link's rule, and what they had
    agreed to: the product and unit price at link time or at their last approval."""

    reason: Literal["price_changed", "product_changed"]
    consented_sku: str | None
    consented_price_minor: int | None


@dataclass(frozen=True)
class NewOrder:
    """An order decided and not yet written: its rows come from here, whoever writes them."""

    id: str
    store_id: int
    shopper_id: int
    channel: str
    status: str
    lines: tuple[rules.PricedLine, ...]
    total_minor: int
    currency: str
    created_at: datetime
    cancel_until: datetime
    idempotency_key: str | None = None
    device_id: int | None = None
    link_id: int | None = None
    device_product_id: int | None = None
    ship_to: ShipTo | None = None  # always set by `decide`; a copy, so later edits never move it
    test: bool = False
    hold: Hold | None = None
    approval_by: ApprovalBy | None = None  # who a pending_approval order waits for
    held_product_id: int | None = None  # what it holds for the household while open

    def order_row(self) -> dict[str, Any]:
        """The `orders` row, with the address it ships to copied into it."""
        assert self.ship_to is not None
        return dict(
            id=self.id,
            store_id=self.store_id,
            shopper_id=self.shopper_id,
            device_id=self.device_id,
            link_id=self.link_id,
            device_product_id=self.device_product_id,
            held_product_id=self.held_product_id,
            channel=self.channel,
            status=self.status,
            idempotency_key=self.idempotency_key,
            total_minor=self.total_minor,
            currency=self.currency,
            created_at=self.created_at,
            updated_at=self.created_at,
            cancel_until=self.cancel_until,
            test=self.test,
            hold_reason=self.hold.reason if self.hold else None,
            consented_sku=self.hold.consented_sku if self.hold else None,
            consented_price_minor=self.hold.consented_price_minor if self.hold else None,
            approval_by=self.approval_by,
            **self.ship_to.order_columns(),
        )

    def line_rows(self) -> list[dict[str, Any]]:
        """The `order_lines` rows, in line order."""
        return [
            dict(
                order_id=self.id,
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                line_total_minor=line.total_minor,
            )
            for line in self.lines
        ]

    def event_row(self) -> dict[str, Any]:
        """The outbox row announcing the order."""
        return dict(
            order_id=self.id,
            store_id=self.store_id,
            type="order.created",
            status=self.status,
            data=ops.traced(self._event_data()),
            created_at=self.created_at,
        )

    def _event_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"device_id": self.device_id, "shopper_id": self.shopper_id}
        if self.test:
            data["test"] = True
        if self.hold is not None:
            data["reason"] = self.hold.reason
        return data


@dataclass(frozen=True)
class Place:
    """Write this order: `placed`, or `needs_approval` when the link asks the shopper first."""

    outcome: Literal["placed", "needs_approval"]
    order: NewOrder


@dataclass(frozen=True)
class InProgress:
    """The link's, or else the household's, order of this product is still open: answer
    with it, place nothing."""

    order_id: str


@dataclass(frozen=True)
class NeedsConsent:
    """A voice yes that cannot order yet: a new price to read back, a PIN, or a lock."""

    what: Literal["price_changed", "needs_pin", "locked", "pin_not_set"]


@dataclass(frozen=True)
class Refusal:
    """No order, for a named reason; nothing may be written."""

    reason: str  # a CONTRACT refusal word, or an invalid-request word
    detail: str = field(default="", compare=False)

    def error(self) -> DomainError:
        """The domain error that answers with this refusal."""
        if self.reason in REFUSAL_REASONS:
            return OrderRefused(self.reason, self.detail)
        if self.reason == "not_found":
            return NotFound(self.reason, self.detail)
        return InvalidRequest(self.reason, self.detail)


Decision = Place | InProgress | NeedsConsent | Refusal

UNLINKED = Refusal("unlinked", "the device is not linked")
NEEDS_ADDRESS = Refusal("needs_address", "the shopper has no delivery address")


class VoiceSettings(Protocol):
    """A shopper's voice-purchase settings (a Shopper row or ShopperFacts)."""

    @property
    def voice_pin_hash(self) -> str | None: ...

    @property
    def voice_pin_threshold_minor(self) -> int | None: ...

    @property
    def voice_locked_until(self) -> datetime | None: ...


def consent_needed(shopper: VoiceSettings, total_minor: int, now: datetime) -> Consent:
    """What a voice purchase of `total_minor` needs from this shopper right now."""
    if shopper.voice_locked_until is not None and now < shopper.voice_locked_until:
        return "locked"
    over_threshold = (
        shopper.voice_pin_threshold_minor is not None
        and total_minor > shopper.voice_pin_threshold_minor
    )
    if shopper.voice_pin_hash is not None:
        return "pin"
    return "pin_not_set" if over_threshold else "none"


def decide(ask: Ask, facts: Facts | None, now: datetime) -> Decision:
    """The one placement decision. `facts` None: nothing is linked to the asking device."""
    if facts is None or (ask.device_id is not None and facts.link is None):
        return UNLINKED
    link = facts.link
    if link is not None:
        if facts.shopper.deleted:
            return Refusal("unlinked", "the shopper has left")
        if link.shopper_id != facts.shopper.id or link.store_id != facts.store.id:
            return Refusal("unlinked", "the device is not linked to this shopper and store")
        if link.paused:
            return Refusal("paused", "the shopper paused this device")
        if link.paused_until is not None and now < link.paused_until:
            return Refusal("paused", "the shopper paused this device for a while")
    elif facts.shopper.deleted:
        return Refusal("not_found", "no such shopper")
    if not facts.lines:
        return Refusal("no_product", "this device's link names no product to order")
    for line in facts.lines:
        if not line.active:
            return Refusal("unknown_sku", f"{line.priced.sku!r} is no longer sold")
    if link is not None and facts.open_order is not None:
        return InProgress(facts.open_order)
    # Test orders live apart: they neither hold a product for the household nor wait for it.
    test = link is not None and link.test
    if facts.household_open is not None and ask.holds() and not test:
        return InProgress(facts.household_open)
    # Before prices and consent: asking for a PIN for an order that cannot ship helps nobody.
    if facts.ship_to is None:
        return NEEDS_ADDRESS
    priced = tuple(line.priced for line in facts.lines)
    total = rules.order_total(priced)
    if ask.quoted_total_minor is not None and total != ask.quoted_total_minor:
        return NeedsConsent("price_changed")
    if ask.pin_verified is not None:
        consent = consent_needed(facts.shopper, total, now)
        if consent == "locked" or consent == "pin_not_set":
            return NeedsConsent(consent)
        if consent == "pin" and not ask.pin_verified:
            return NeedsConsent("needs_pin")
    # A test order spends nothing and takes no stock, so neither caps nor stock stop it.
    if not test:
        refused = _over_a_cap(facts, total)
        if refused is not None:
            return refused
        for line in facts.lines:
            if line.stock < line.priced.quantity:
                return Refusal("out_of_stock", f"not enough {line.priced.sku} in stock")
    hold = guard_consent(link, priced)
    # A suggested part is the shopper's to accept, whatever their approval rule; a household
    # may make every voice purchase wait for the web.
    shopper_first = (
        (link is not None and link.approval_required)
        or hold is not None
        or ask.suggested
        or (ask.channel == "voice" and facts.shopper.voice_approval)
    )
    approval_by = approver(shopper_first, facts.store, total)
    status = "pending_approval" if approval_by else "placed"
    order = NewOrder(
        id=new_order_id(),
        store_id=facts.store.id,
        shopper_id=facts.shopper.id,
        channel=ask.channel,
        status=status,
        lines=priced,
        total_minor=total,
        currency=facts.store.currency,
        created_at=now,
        cancel_until=rules.cancel_deadline(now, facts.store.cancel_window_minutes),
        idempotency_key=ask.idempotency_key,
        device_id=ask.device_id,
        link_id=link.id if link else None,
        device_product_id=priced[0].product_id if link else None,
        ship_to=facts.ship_to,
        test=test,
        hold=hold,
        approval_by=approval_by,
        held_product_id=priced[0].product_id if ask.holds() and not test else None,
    )
    return Place("needs_approval" if approval_by else "placed", order)


def merchant_reviews(store: StoreFacts, total_minor: int) -> bool:
    """True when an order of `total_minor` waits for the store's approval."""
    threshold = store.review_orders_over_minor
    return threshold is not None and total_minor >= threshold


def approver(shopper_first: bool, store: StoreFacts, total_minor: int) -> ApprovalBy | None:
    """Who a new order waits for: its shopper first when the link asks, then (once the shopper
    consents, see `lifecycle.approve_order`) the merchant when the store reviews its size."""
    if shopper_first:
        return "shopper"
    return "merchant" if merchant_reviews(store, total_minor) else None


def guard_consent(link: LinkFacts | None, priced: tuple[rules.PricedLine, ...]) -> Hold | None:
    """A device order for another product than the shopper agreed to, or dearer than
    they agreed beyond their tolerance, waits for them (OLG München 29 U 1091/18)."""
    if link is None or link.consented_product_id is None or not priced:
        return None
    line = priced[0]  # a device orders one product
    if line.product_id != link.consented_product_id:
        return Hold("product_changed", link.consented_sku, link.consented_price_minor)
    agreed = link.consented_price_minor
    if agreed is not None and line.unit_price_minor > agreed + link.price_tolerance_minor:
        return Hold("price_changed", link.consented_sku, agreed)
    return None


def _over_a_cap(facts: Facts, total: int) -> Refusal | None:
    link = facts.link
    if link is not None:
        if rules.exceeds_cap(total, 0, link.per_order_cap_minor):
            return Refusal("spending_cap", "over this device's per-order cap")
        if rules.exceeds_cap(total, facts.spent_link, link.monthly_cap_minor):
            return Refusal("spending_cap", "over this device's monthly cap")
    if rules.exceeds_cap(total, facts.spent_shopper, facts.shopper.monthly_cap_minor):
        return Refusal("spending_cap", "over the shopper's monthly cap")
    return None
