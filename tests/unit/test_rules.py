"""The pure rules of orders/: money, caps, windows and status moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orders.domain import rules
from orders.domain.errors import InvalidRequest, NotAllowed


def test_order_total_sums_lines_in_minor_units() -> None:
    """Totals are exact integer sums of price × quantity."""
    lines = [
        rules.PricedLine(1, "A", "a", 3, 199),
        rules.PricedLine(2, "B", "b", 2, 1),
    ]
    assert rules.order_total(lines) == 3 * 199 + 2


@pytest.mark.parametrize("quantity", [0, -1, 100, True, 1.5])
def test_bad_quantities_are_refused(quantity: object) -> None:
    """Quantities outside 1..99, booleans and fractions are invalid requests."""
    with pytest.raises(InvalidRequest):
        rules.check_quantity(quantity)  # type: ignore[arg-type]


def test_month_start_is_the_first_midnight_utc() -> None:
    """The cap month starts on the 1st at 00:00 UTC, whatever zone `now` is in."""
    now = datetime(2026, 3, 1, 0, 30, tzinfo=UTC) + timedelta(hours=-1)
    assert rules.month_start(now) == datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("total", "spent", "cap", "over"),
    [(100, 0, None, False), (100, 900, 1000, False), (101, 900, 1000, True), (1, 0, 0, True)],
)
def test_caps_allow_spending_up_to_the_cap(
    total: int, spent: int, cap: int | None, over: bool
) -> None:
    """Reaching the cap exactly is allowed; one minor unit more is not."""
    assert rules.exceeds_cap(total, spent, cap) is over


def test_shopper_cannot_ship_or_deliver() -> None:
    """Each transition names who may make it (which approval is whose: orders.domain.actions)."""
    with pytest.raises(NotAllowed) as shipped:
        rules.check_transition("placed", "shipped", "shopper")
    assert shipped.value.reason == "not_permitted"
    with pytest.raises(NotAllowed):
        rules.check_transition("shipped", "delivered", "shopper")
    rules.check_transition("placed", "shipped", "merchant")


def test_delivered_orders_cannot_be_cancelled() -> None:
    """Delivered and cancelled orders are final."""
    for status in ("delivered", "cancelled"):
        with pytest.raises(NotAllowed) as err:
            rules.check_transition(status, "cancelled", "merchant")
        assert err.value.reason == "invalid_transition"


def test_shopper_cancel_window_closes_after_cancel_until() -> None:
    """A placed order is cancellable until `cancel_until`, inclusive."""
    created = datetime(2026, 1, 1, 12, tzinfo=UTC)
    until = rules.cancel_deadline(created, 30)
    rules.check_shopper_cancel("placed", until, until)
    with pytest.raises(NotAllowed) as err:
        rules.check_shopper_cancel("placed", until, until + timedelta(seconds=1))
    assert err.value.reason == "cancel_window_closed"
    rules.check_shopper_cancel("pending_approval", until, until + timedelta(days=1))
