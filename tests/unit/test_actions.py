"""Which actions an order offers to whom and until when (orders.domain.actions): no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain import rules
from orders.domain.actions import (
    TARGET,
    Action,
    Viewer,
    allowed_actions,
    check_action,
)
from orders.domain.errors import NotAllowed
from orders.store.model import STATUSES

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WINDOW_END = T0 + timedelta(minutes=30)
SHOPPER, STORE, DEVICE = 7, 3, 11
ACTIONS: tuple[Action, ...] = ("approve", "reject", "cancel", "ship", "deliver")


@dataclass(frozen=True)
class Snapshot:
    """The few facts deciding reads, as a plain order snapshot."""

    status: str
    store_id: int = STORE
    shopper_id: int | None = SHOPPER
    device_id: int | None = DEVICE
    cancel_until: datetime = WINDOW_END
    test: bool = False
    approval_by: str | None = None


SHOPPER_VIEW = Viewer.shopper(SHOPPER)
MERCHANT_VIEW = Viewer.merchant(STORE)
DEVICE_VIEW = Viewer.device(DEVICE)

# Inside the window: every status × viewer, exactly.
EXPECTED: dict[tuple[str, str], set[str]] = {
    ("pending_approval", "shopper"): {"approve", "reject"},
    ("pending_approval", "merchant"): {"cancel"},
    ("pending_approval", "device"): {"cancel"},
    ("placed", "shopper"): {"cancel"},
    ("placed", "merchant"): {"ship", "cancel"},
    ("placed", "device"): {"cancel"},
    ("shipped", "shopper"): set(),
    ("shipped", "merchant"): {"deliver"},
    ("shipped", "device"): set(),
    ("delivered", "shopper"): set(),
    ("delivered", "merchant"): set(),
    ("delivered", "device"): set(),
    ("cancelled", "shopper"): set(),
    ("cancelled", "merchant"): set(),
    ("cancelled", "device"): set(),
}
VIEWERS = {"shopper": SHOPPER_VIEW, "merchant": MERCHANT_VIEW, "device": DEVICE_VIEW}


def test_the_table_covers_every_status() -> None:
    """Every status the model knows has an expected answer for every viewer."""
    assert {status for status, _ in EXPECTED} == set(STATUSES)


@pytest.mark.parametrize(("status", "role"), sorted(EXPECTED))
def test_each_status_offers_each_viewer_exactly_its_actions(status: str, role: str) -> None:
    """Inside the cancel window, the offer is the table's, no more and no less."""
    offer = allowed_actions(Snapshot(status), VIEWERS[role], T0)
    assert set(offer.actions) == EXPECTED[(status, role)]


def test_a_placed_order_can_be_cancelled_at_the_windows_last_instant() -> None:
    """At `cancel_until` exactly the shopper may still cancel, and the offer says until when."""
    offer = allowed_actions(Snapshot("placed"), SHOPPER_VIEW, WINDOW_END)
    assert offer.actions == {"cancel"} and offer.until == WINDOW_END
    check_action(Snapshot("placed"), SHOPPER_VIEW, "cancel", WINDOW_END)


def test_after_the_window_the_shopper_and_device_get_nothing_and_the_merchant_keeps_all() -> None:
    """A microsecond past `cancel_until`: no cancel for shopper or device; the store still can."""
    late = WINDOW_END + timedelta(microseconds=1)
    assert allowed_actions(Snapshot("placed"), SHOPPER_VIEW, late).actions == frozenset()
    assert allowed_actions(Snapshot("placed"), DEVICE_VIEW, late).actions == frozenset()
    assert allowed_actions(Snapshot("placed"), MERCHANT_VIEW, late).actions == {"ship", "cancel"}
    with pytest.raises(NotAllowed) as err:
        check_action(Snapshot("placed"), SHOPPER_VIEW, "cancel", late)
    assert err.value.reason == "cancel_window_closed"


def test_only_a_time_limited_offer_names_an_end() -> None:
    """`until` is the window's end for a shopper's cancel, and None where no window binds."""
    assert allowed_actions(Snapshot("placed"), MERCHANT_VIEW, T0).until is None
    assert allowed_actions(Snapshot("pending_approval"), SHOPPER_VIEW, T0).until is None
    assert allowed_actions(Snapshot("placed"), DEVICE_VIEW, T0).until == WINDOW_END


@pytest.mark.parametrize("status", STATUSES)
def test_an_order_that_is_not_the_viewers_offers_nothing(status: str) -> None:
    """Another shopper, another store or another device is offered no action at all."""
    for viewer in (Viewer.shopper(SHOPPER + 1), Viewer.merchant(STORE + 1), Viewer.device(99)):
        assert allowed_actions(Snapshot(status), viewer, T0).actions == frozenset()
    orphan = Snapshot(status, shopper_id=None, device_id=None)
    assert allowed_actions(orphan, SHOPPER_VIEW, T0).actions == frozenset()


@pytest.mark.parametrize("now", [T0, WINDOW_END, WINDOW_END + timedelta(seconds=1)])
@pytest.mark.parametrize(("status", "role"), sorted(EXPECTED))
def test_what_is_offered_is_what_the_rules_allow(status: str, role: str, now: datetime) -> None:
    """An offered action passes the transition and window rules; a refused one is NotAllowed."""
    order, viewer = Snapshot(status), VIEWERS[role]
    offer = allowed_actions(order, viewer, now)
    for action in ACTIONS:
        if action in offer:
            rule_role = "shopper" if role == "device" else role
            rules.check_transition(status, TARGET[action], rule_role)
            check_action(order, viewer, action, now)
        else:
            with pytest.raises(NotAllowed):
                check_action(order, viewer, action, now)


def test_refusals_keep_the_reason_words_callers_map() -> None:
    """Wrong status, wrong role and rejecting a placed order each name their reason."""
    with pytest.raises(NotAllowed) as wrong_status:
        check_action(Snapshot("placed"), MERCHANT_VIEW, "deliver", T0)
    assert wrong_status.value.reason == "invalid_transition"
    with pytest.raises(NotAllowed) as wrong_role:
        check_action(Snapshot("placed"), SHOPPER_VIEW, "ship", T0)
    assert wrong_role.value.reason == "not_permitted"
    with pytest.raises(NotAllowed) as not_waiting:
        check_action(Snapshot("placed"), SHOPPER_VIEW, "reject", T0)
    assert not_waiting.value.reason == "invalid_transition"
    with pytest.raises(NotAllowed) as device_approves:
        check_action(Snapshot("pending_approval"), DEVICE_VIEW, "approve", T0)
    assert device_approves.value.reason == "not_permitted"


HELD_BY_STORE = Snapshot("pending_approval", approval_by="merchant")
HELD_BY_SHOPPER = Snapshot("pending_approval", approval_by="shopper")


def test_an_order_held_for_the_store_is_approved_or_rejected_by_the_store_only() -> None:
    """Merchant-held: the store approves or rejects; the shopper and device may only cancel."""
    assert allowed_actions(HELD_BY_STORE, MERCHANT_VIEW, T0).actions == {"approve", "reject"}
    assert allowed_actions(HELD_BY_STORE, SHOPPER_VIEW, T0).actions == {"cancel"}
    assert allowed_actions(HELD_BY_STORE, DEVICE_VIEW, T0).actions == {"cancel"}
    for action in ("approve", "reject"):
        with pytest.raises(NotAllowed) as shopper_decides:
            check_action(HELD_BY_STORE, SHOPPER_VIEW, action, T0)
        assert shopper_decides.value.reason == "not_permitted"


def test_the_store_cannot_give_a_shoppers_consent() -> None:
    """Shopper-held: approving or rejecting as the store is not permitted (a 409 in the API)."""
    assert allowed_actions(HELD_BY_SHOPPER, MERCHANT_VIEW, T0).actions == {"cancel"}
    for action in ("approve", "reject"):
        with pytest.raises(NotAllowed) as store_decides:
            check_action(HELD_BY_SHOPPER, MERCHANT_VIEW, action, T0)
        assert store_decides.value.reason == "not_permitted"
        assert "shopper" in store_decides.value.detail
