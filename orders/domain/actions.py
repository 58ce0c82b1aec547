"""Which actions an order offers to whom, and until when: one answer for pages and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from orders.domain import rules
from orders.domain.errors import NotAllowed

Action = Literal["approve", "reject", "cancel", "ship", "deliver"]
Role = Literal["shopper", "merchant", "device"]

# The status each action moves an order to.
TARGET: dict[Action, str] = {
    "approve": "placed",
    "reject": "cancelled",
    "cancel": "cancelled",
    "ship": "shipped",
    "deliver": "delivered",
}

# What the store may do, by status: no window binds a merchant.
_MERCHANT: dict[str, frozenset[Action]] = {
    "pending_approval": frozenset({"cancel"}),
    "placed": frozenset({"ship", "cancel"}),
    "shipped": frozenset({"deliver"}),
}


class OrderFacts(Protocol):
    """What deciding needs to read of an order (an `OrderView` or an ORM `Order`)."""

    @property
    def status(self) -> str: ...
    @property
    def store_id(self) -> int: ...
    @property
    def shopper_id(self) -> int | None: ...
    @property
    def device_id(self) -> int | None: ...
    @property
    def cancel_until(self) -> datetime: ...
    @property
    def test(self) -> bool: ...
    @property
    def approval_by(self) -> str | None: ...


@dataclass(frozen=True)
class Viewer:
    """Who looks at or acts on an order: its shopper, its store's staff, or its device."""

    role: Role
    id: int  # shopper id, store id for a merchant, device id for a device
    # A shopper acting through a store-bound token (Alexa) reaches that store's orders only.
    store_id: int | None = None
    # A device acts for its current link only: a resold device never reaches the seller's orders.
    link_id: int | None = None

    @classmethod
    def shopper(cls, shopper_id: int, store_id: int | None = None) -> Viewer:
        """The shopper with this id, limited to one store's orders when `store_id` is given."""
        return cls("shopper", shopper_id, store_id)

    @classmethod
    def merchant(cls, store_id: int) -> Viewer:
        """Staff of the store with this id."""
        return cls("merchant", store_id)

    @classmethod
    def device(cls, device_id: int, link_id: int | None = None) -> Viewer:
        """The device with this id, limited to one link's orders when `link_id` is given."""
        return cls("device", device_id, link_id=link_id)

    def concerns(self, order: OrderFacts) -> bool:
        """True when the order is this viewer's: the shopper's, the store's, the device's."""
        if self.role == "shopper":
            in_store = self.store_id is None or order.store_id == self.store_id
            return order.shopper_id == self.id and in_store
        if self.role == "merchant":
            return order.store_id == self.id
        return order.device_id == self.id


@dataclass(frozen=True)
class Allowed:
    """The actions a viewer may take on an order now, and when a time-limited one ends."""

    actions: frozenset[Action] = frozenset()
    until: datetime | None = None  # end of the cancel window, when cancelling is time-limited

    def __contains__(self, action: object) -> bool:
        return action in self.actions


NOTHING = Allowed()


def allowed_actions(order: OrderFacts, viewer: Viewer, now: datetime) -> Allowed:
    """What `viewer` may do to `order` at `now` (nothing for an order that is not theirs)."""
    if not viewer.concerns(order):
        return NOTHING
    held_by_merchant = order.status == "pending_approval" and order.approval_by == "merchant"
    if viewer.role == "merchant":
        if held_by_merchant:
            return Allowed(frozenset({"approve", "reject"}))
        offered = _MERCHANT.get(order.status, frozenset())
        # A test order never ships: it ends cancelled, by hand or when its window ends.
        return Allowed(offered - {"ship", "deliver"} if order.test else offered)
    if order.status == "pending_approval":
        # Its approver decides (the shopper consents; the store reviews); the shopper, or the
        # device that asked, may still call it off.
        if viewer.role == "shopper" and not held_by_merchant:
            return Allowed(frozenset({"approve", "reject"}))
        return Allowed(frozenset({"cancel"}))
    # The window includes its last instant: the rules refuse only after `cancel_until`.
    if order.status == "placed" and now <= order.cancel_until:
        return Allowed(frozenset({"cancel"}), until=order.cancel_until)
    return NOTHING


def check_action(order: OrderFacts, viewer: Viewer, action: Action, now: datetime) -> None:
    """Raise NotAllowed, with the reason the rules name, unless `allowed_actions` offers it."""
    if action in allowed_actions(order, viewer, now):
        return
    if order.test and action in ("ship", "deliver"):
        raise NotAllowed("test", "a test order never ships")
    if action in ("approve", "reject") and order.status != "pending_approval":
        raise NotAllowed("invalid_transition", "only an order waiting for approval is decided on")
    if action in ("approve", "reject") and viewer.role in ("shopper", "merchant"):
        # Consent is the shopper's alone, review the store's: neither decides for the other.
        waits_for = order.approval_by or "shopper"
        if waits_for != viewer.role:
            raise NotAllowed("not_permitted", f"this order waits for its {waits_for}'s approval")
    # A device acts for its shopper: the shopper's transitions and window bind it.
    role = "shopper" if viewer.role == "device" else viewer.role
    rules.check_transition(order.status, TARGET[action], role)
    if role == "shopper":
        rules.check_shopper_cancel(order.status, order.cancel_until, now)
    raise NotAllowed("not_permitted", f"a {viewer.role} cannot {action} this order")
