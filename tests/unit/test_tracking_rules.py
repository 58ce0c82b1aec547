"""Carrier tracking rules without a database: status moves, slips, stale scans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from orders.domain.errors import InvalidRequest, NotAllowed
from orders.domain.tracking import (
    CARRIER_STATUSES,
    EASYPOST_STATUS,
    TrackingFacts,
    apply_tracking,
    check_carrier_status,
    slipped,
)

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
THURSDAY = date(2026, 12, 10)


def _facts(status: str = "shipped", latest: datetime | None = None) -> TrackingFacts:
    return TrackingFacts(status, THURSDAY, latest)


def test_delivered_moves_a_shipped_order_to_delivered() -> None:
    """The one status a carrier changes: shipped → delivered, with no delay."""
    outcome = apply_tracking(_facts(), "delivered", NOW, None, None)
    assert (outcome.new_status, outcome.delayed) == ("delivered", False)


@pytest.mark.parametrize("status", ["in_transit", "out_for_delivery", "exception"])
def test_other_scans_leave_the_status_alone(status: str) -> None:
    """In transit, out for delivery and exceptions keep the order shipped."""
    outcome = apply_tracking(_facts(), check_carrier_status(status), NOW, THURSDAY, None)
    assert outcome.new_status is None and not outcome.delayed


def test_a_later_estimate_is_a_slip_with_the_carriers_reason() -> None:
    """A day later than the one the shopper was told delays the order, saying why."""
    friday = THURSDAY + timedelta(days=1)
    outcome = apply_tracking(_facts(), "exception", NOW, friday, "  Weather delay ")
    assert (outcome.expected_on, outcome.delayed, outcome.reason) == (
        friday,
        True,
        "Weather delay",
    )


def test_an_earlier_estimate_moves_the_day_without_a_delay() -> None:
    """Good news changes the expected day and delays nothing."""
    outcome = apply_tracking(_facts(), "in_transit", NOW, THURSDAY - timedelta(days=1), None)
    assert outcome.expected_on == THURSDAY - timedelta(days=1) and not outcome.delayed


def test_a_slip_without_a_description_gets_a_plain_reason() -> None:
    """Carriers often say nothing; the shopper still hears a reason."""
    outcome = apply_tracking(_facts(), "in_transit", NOW, THURSDAY + timedelta(days=2), "")
    assert outcome.reason == "the carrier moved the delivery date"


def test_a_return_to_sender_delays_the_order() -> None:
    """The parcel is going back: the order is delayed, its status stays shipped."""
    outcome = apply_tracking(_facts(), "returned", NOW, None, None)
    assert (outcome.new_status, outcome.delayed) == (None, True)
    assert outcome.reason == "the parcel is being returned to the store"


def test_a_scan_older_than_the_newest_one_does_not_move_the_day() -> None:
    """Carriers resend old scans; an old estimate never overrides a newer one."""
    outcome = apply_tracking(
        _facts(latest=NOW), "in_transit", NOW - timedelta(hours=1), THURSDAY + timedelta(3), None
    )
    assert outcome.expected_on is None and not outcome.delayed


def test_a_delivered_order_only_collects_scans() -> None:
    """After delivery nothing moves: no status, no day, no delay."""
    outcome = apply_tracking(_facts("delivered"), "returned", NOW, THURSDAY + timedelta(3), None)
    assert (outcome.new_status, outcome.expected_on, outcome.delayed) == (None, None, False)


@pytest.mark.parametrize("status", ["pending_approval", "placed", "cancelled"])
def test_an_order_that_is_not_shipped_refuses_scans(status: str) -> None:
    """Tracking applies to shipped orders only."""
    with pytest.raises(NotAllowed) as err:
        apply_tracking(_facts(status), "in_transit", NOW, None, None)
    assert err.value.reason == "not_shipped"


def test_only_the_five_carrier_statuses_are_accepted() -> None:
    """Anything else (another vocabulary, another type) is a bad request."""
    assert [check_carrier_status(s) for s in CARRIER_STATUSES] == list(CARRIER_STATUSES)
    for wrong in ("shipped", "DELIVERED", None, 3):
        with pytest.raises(InvalidRequest):
            check_carrier_status(wrong)


def test_every_easypost_status_maps_into_our_words_or_is_ignored() -> None:
    """EasyPost's tracker statuses land on ours (None: nothing an order needs)."""
    assert set(EASYPOST_STATUS.values()) - {None} <= set(CARRIER_STATUSES)
    assert EASYPOST_STATUS["return_to_sender"] == "returned"
    assert EASYPOST_STATUS["pre_transit"] is None


def test_a_slip_is_a_later_day_only() -> None:
    """Same day or earlier is no slip; no estimate is no slip."""
    assert slipped(THURSDAY, THURSDAY + timedelta(days=1))
    assert not slipped(THURSDAY, THURSDAY)
    assert not slipped(THURSDAY, THURSDAY - timedelta(days=1))
    assert not slipped(THURSDAY, None)
