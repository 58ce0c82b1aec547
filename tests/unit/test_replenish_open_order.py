"""The predictive policy with an order open: the open order's expected day decides the warning."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from orders.domain.replenishment import PredictivePolicy, Reading, SlotState

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _open(arrives_in_days: float | None) -> SlotState:
    """A 100-unit slot used 5 a day for two weeks (30 left: six days), an order open."""
    readings = [Reading(T0 + timedelta(days=d), 100.0 - 5.0 * d) for d in range(15)]
    now = readings[-1].at + timedelta(minutes=5)
    base = SlotState(capacity=100.0, units_per_pack=20.0, readings=readings, now=now,
                     lead_time_days=2.0, order_open=True)  # fmt: skip
    arrives = None if arrives_in_days is None else now + timedelta(days=arrives_in_days)
    return dataclasses.replace(base, open_order_arrives_at=arrives)


def test_an_open_order_arriving_in_time_is_just_open() -> None:
    """Arriving in two days with six days left: no order, no warning."""
    decision = PredictivePolicy().decide(_open(2.0))
    assert (decision.order, decision.reason) == (False, "order_open")
    assert decision.stockout_probability is not None and decision.stockout_probability < 0.5


def test_an_open_order_slipped_past_the_runout_is_late() -> None:
    """The carrier moved it to ten days out: the slot empties first, and the decision says so."""
    decision = PredictivePolicy().decide(_open(10.0))
    assert (decision.order, decision.packs, decision.reason) == (False, 0, "order_open_late")
    assert decision.runout_at is not None and decision.stockout_probability is not None
    assert decision.stockout_probability > 0.5


def test_without_an_expected_day_an_open_order_stays_plainly_open() -> None:
    """No date, no judgement: the old answer."""
    assert PredictivePolicy().decide(_open(None)).reason == "order_open"
