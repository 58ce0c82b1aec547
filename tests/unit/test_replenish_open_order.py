"""The predictive policy with an order open: the open order's expected day decides the warning."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.replenishment import (
    PredictivePolicy,
    Reading,
    SlotState,
    open_order_scenarios,
)

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


def test_a_carriers_slow_record_widens_an_open_orders_arrival() -> None:
    """Shipped two days ago, due in three: a carrier that often takes nine days makes it late."""
    state = _open(3.0)
    shipped = state.now - timedelta(days=2)
    quick = dataclasses.replace(state, open_order_shipped_at=shipped, transit_days=[3.0] * 10)
    slow = dataclasses.replace(
        state, open_order_shipped_at=shipped, transit_days=[3.0] * 4 + [11.0] * 6
    )
    assert PredictivePolicy().decide(quick).reason == "order_open"
    assert PredictivePolicy().decide(slow).reason == "order_open_late"
    got = open_order_scenarios(state.now, state.now + timedelta(days=3), shipped, [3.0] * 10)
    assert [days for days, _ in got] == [3.0] and got[0][1] == pytest.approx(1.0)


def test_a_parcel_older_than_every_observed_transit_needs_as_long_again() -> None:
    """Past every transit the carrier ever took, the expected day is no longer believed."""
    now = T0
    got = open_order_scenarios(now, now + timedelta(days=1), now - timedelta(days=8), [3.0] * 6)
    assert got == [(8.0, 1.0)]


def test_the_late_parcel_reorder_is_opt_in_and_happens_once() -> None:
    """Three days past the expected day: the default waits, the opt-in orders one pack, once."""
    late = _open(-3.5)
    assert PredictivePolicy().decide(late).order is False
    opted = PredictivePolicy(late_reorder_days=3.0)
    decision = opted.decide(late)
    assert (decision.order, decision.packs, decision.reason) == (True, 1, "late_reorder")
    assert opted.decide(dataclasses.replace(late, open_order_replaced=True)).order is False
    assert opted.decide(_open(-2.0)).order is False  # two days late: not yet
