"""Replenishment decisions on edge cases: fixed reorder point and predictive policy."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.replenishment import (
    PredictivePolicy,
    Reading,
    SlotState,
    ThresholdPolicy,
    lead_time_scenarios,
    predict_runout,
    stockout_probability,
)
from orders.services.telemetry import SlotLevel, link_policy

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def daily(levels: list[float]) -> list[Reading]:
    """One reading a day starting at T0."""
    return [Reading(T0 + timedelta(days=i), level) for i, level in enumerate(levels)]


def state(readings: list[Reading], **overrides: object) -> SlotState:
    """A 100-unit slot refilled by 20-unit packs, two days' lead time, judged just after."""
    base = SlotState(
        capacity=100.0,
        units_per_pack=20.0,
        readings=readings,
        now=max((r.at for r in readings), default=T0) + timedelta(minutes=5),
        lead_time_days=2.0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def declining(start: float, rate: float, days: int) -> list[Reading]:
    return daily([start - rate * d for d in range(days)])


def test_threshold_device_linked_below_its_reorder_point_orders_on_first_reading() -> None:
    """The very first reading under the reorder point places an order up to full."""
    decision = ThresholdPolicy(reorder_point=30.0).decide(state(daily([12.0])))
    assert decision.order
    assert decision.reason == "below_reorder_point"
    assert decision.packs == 4  # room of 88 holds four 20-unit packs, not five


def test_predictive_device_linked_nearly_empty_orders_on_first_reading() -> None:
    """Without history the predictive policy falls back to a generous reorder point."""
    decision = PredictivePolicy().decide(state(daily([12.0])))
    assert decision.order
    assert decision.reason.startswith("fallback")
    assert 1 <= decision.packs <= 4


def test_predictive_device_linked_full_waits_for_history() -> None:
    """A nearly full slot with one reading orders nothing and says why."""
    decision = PredictivePolicy().decide(state(daily([90.0])))
    assert not decision.order
    assert decision.reason == "fallback_enough_stock"


def test_no_readings_is_no_data_and_no_order() -> None:
    """With nothing reported, neither policy orders."""
    for policy in (PredictivePolicy(), ThresholdPolicy(reorder_point=50.0)):
        decision = policy.decide(state([]))
        assert (decision.order, decision.reason) == (False, "no_data")


def test_same_level_every_day_never_orders() -> None:
    """An unused slot has no run-out date and no risk."""
    readings = daily([40.0] * 30)
    decision = PredictivePolicy().decide(state(readings))
    assert not decision.order
    assert decision.reason == "enough_stock"
    assert decision.runout_at is None
    assert decision.stockout_probability is not None and decision.stockout_probability < 0.01


def test_order_open_blocks_a_second_order_even_after_a_refill() -> None:
    """A refill while an order is open (bought in a shop) does not lead to a second order."""
    readings = declining(60.0, 5.0, 11) + [Reading(T0 + timedelta(days=11), 100.0)]
    readings += [Reading(T0 + timedelta(days=12 + d), 95.0 - 5.0 * d) for d in range(18)]
    for policy in (PredictivePolicy(), ThresholdPolicy(reorder_point=50.0)):
        assert policy.decide(state(readings)).order  # would order if nothing were open
        decision = policy.decide(state(readings, order_open=True))
        assert (decision.order, decision.packs, decision.reason) == (False, 0, "order_open")


def test_predictive_orders_before_run_out_within_lead_time() -> None:
    """Six days of stock, two days' lead time and a daily look: order now, not later."""
    readings = declining(90.0, 5.0, 13)  # ends at 30, using 5 a day
    late = PredictivePolicy(risk=0.05).decide(state(readings[:-4], lead_time_days=2.0))
    assert not late.order  # ten days of stock left is plenty
    decision = PredictivePolicy(risk=0.05).decide(state(readings, lead_time_days=5.0))
    assert decision.order and decision.reason == "runout_risk"
    assert decision.rate_per_day == pytest.approx(5.0, abs=0.1)
    assert decision.runout_at is not None
    assert decision.runout_at - T0 == pytest.approx(timedelta(days=18), abs=timedelta(hours=3))


def test_heavier_use_orders_earlier_than_light_use() -> None:
    """At the same level a fast-consuming household orders, a slow one does not."""
    fast = PredictivePolicy().decide(state(declining(100.0, 6.0, 11)))  # at 40
    slow = PredictivePolicy().decide(state(declining(50.0, 1.0, 11)))  # at 40
    assert fast.order and not slow.order


def test_order_up_to_fills_in_whole_packs_without_overflowing() -> None:
    """Order-up-to asks for the whole packs that fit when the order arrives, rounded down."""
    readings = declining(90.0, 5.0, 15)  # 20 now, using 5 a day
    decision = PredictivePolicy(max_level=100.0).decide(state(readings, lead_time_days=2.0))
    assert decision.order
    # About 3 days until it arrives (promise plus the chance of delay) leaves ~6 units:
    # 94 of room holds four packs of 20, and a fifth would overflow.
    assert decision.packs == 4


def test_cover_period_sets_the_quantity() -> None:
    """Without an order-up-to level, a fast consumer buys for about the cover period."""
    readings = declining(90.0, 5.0, 15)  # 20 now, ~6 on arrival, 20 days in a full slot
    decision = PredictivePolicy(cover_days=14.0).decide(state(readings))
    assert decision.order
    # Cover sqrt(14 * 20) = 16.7 days = 84 units, less the ~6 left: ceil(78 / 20) = 4 packs.
    assert decision.packs == 4


def test_slow_consumers_buy_for_longer_than_the_cover_period() -> None:
    """Square-root law: at 1 a day a 14-day cover becomes ~37 days (two packs, not one)."""
    readings = declining(40.0, 1.0, 33)  # 8 now, 100 days in a full slot
    decision = PredictivePolicy(cover_days=14.0).decide(state(readings, lead_time_days=3.0))
    assert decision.order
    assert decision.packs == 2


def test_clock_jump_reading_is_ignored() -> None:
    """A reading stamped a year ahead does not hide that the slot is nearly empty."""
    readings = declining(90.0, 5.0, 16)  # at 15 now
    jumped = [*readings, Reading(T0 + timedelta(days=400), 100.0)]
    for policy in (PredictivePolicy(), ThresholdPolicy(reorder_point=20.0)):
        decision = policy.decide(state(jumped, now=readings[-1].at + timedelta(minutes=5)))
        assert decision.order
        assert decision.level is not None and decision.level < 20.0


def test_observed_lead_times_replace_the_promise_as_they_accrue() -> None:
    """Thirty deliveries that all took six days outweigh a two-day promise."""
    few = dict(lead_time_scenarios(2.0, []))
    many = dict(lead_time_scenarios(2.0, [6.0] * 30))
    assert few.get(6.0, 0.0) == 0.0 and 2.0 in few
    assert many[6.0] > 0.8
    assert sum(many.values()) == pytest.approx(1.0)


def test_slow_deliveries_make_the_policy_order_sooner() -> None:
    """Same slot, same day: known six-day deliveries trigger an order, quick ones do not."""
    readings = declining(90.0, 5.0, 11)  # at 40: eight days of stock
    quick = PredictivePolicy(risk=0.05).decide(state(readings, observed_lead_times_days=[1.0] * 20))
    slow = PredictivePolicy(risk=0.05).decide(state(readings, observed_lead_times_days=[6.0] * 20))
    assert not quick.order and slow.order
    assert slow.stockout_probability is not None and quick.stockout_probability is not None
    assert slow.stockout_probability > quick.stockout_probability


def test_predict_runout_reports_rate_and_date() -> None:
    """The run-out prediction comes with the rate and its uncertainty."""
    runout, est = predict_runout(state(declining(80.0, 4.0, 10)))
    assert est is not None and runout is not None
    assert est.rate_per_day == pytest.approx(4.0, abs=0.01)
    assert runout - T0 == pytest.approx(timedelta(days=20), abs=timedelta(hours=2))
    assert predict_runout(state([])) == (None, None)


def test_naive_now_is_refused() -> None:
    """Naive times are refused: readings, now and lead times must line up in UTC."""
    with pytest.raises(ValueError):
        SlotState(100.0, 20.0, [], datetime(2026, 1, 1), 2.0)
    with pytest.raises(ValueError):
        Reading(datetime(2026, 1, 1), 50.0)


def test_risk_grows_with_time_since_the_last_reading() -> None:
    """The same estimate is riskier when the latest reading is days old: the level drifted."""
    _, est = predict_runout(state(declining(90.0, 3.0, 20)))  # 33 now, 3 a day
    assert est is not None
    fresh = stockout_probability(est, [(5.0, 1.0)])
    stale = stockout_probability(est, [(5.0, 1.0)], stale_days=4.0)
    assert stale > fresh


def test_risk_allows_for_days_using_several_days_worth() -> None:
    """A slot that regular use cannot empty still has some risk: a jump in use could."""
    _, est = predict_runout(state(declining(90.0, 3.0, 20)))  # 33 now: 11 days at 3 a day
    assert est is not None and est.jump_rate_per_day > 0.0
    with_jumps = stockout_probability(est, [(7.0, 1.0)])
    without = stockout_probability(dataclasses.replace(est, jump_rate_per_day=0.0), [(7.0, 1.0)])
    assert with_jumps > 2.0 * without


def test_jumps_seen_in_the_history_raise_the_learned_jump_rate() -> None:
    """A household that twice used four days' worth at once is judged jumpier than a steady one."""
    steady = [100.0 - 2.0 * d for d in range(30)]
    jumpy = list(steady)
    for day in (8, 19):  # two days of guests: eight units more than usual, kept afterwards
        jumpy[day:] = [level - 8.0 for level in jumpy[day:]]
    now = T0 + timedelta(days=29, minutes=5)
    _, calm = predict_runout(state(daily(steady), now=now))
    _, busy = predict_runout(state(daily(jumpy), now=now))
    assert calm is not None and busy is not None
    assert busy.jump_rate_per_day > 2.0 * calm.jump_rate_per_day
    assert busy.jump_extra_days > 2.0


def test_a_device_that_never_missed_a_report_may_still_go_quiet() -> None:
    """Perfect daily reports still leave room for a silence longer than any seen so far."""
    _, est = predict_runout(state(declining(90.0, 5.0, 11)))
    assert est is not None
    gaps = dict(est.report_gaps)
    assert max(gaps) >= 2.0 and 0.0 < gaps[max(gaps)] < 0.1
    assert sum(gaps.values()) == pytest.approx(1.0)


def test_order_up_to_counts_what_is_used_until_the_delivery_arrives() -> None:
    """At 20 and 5 a day, a one-day delivery finds ~14 left, a six-day one finds nothing."""
    readings = declining(90.0, 5.0, 15)
    policy = PredictivePolicy(risk=0.001, max_level=100.0)
    quick = policy.decide(state(readings, observed_lead_times_days=[1.0] * 30))
    slow = policy.decide(state(readings, observed_lead_times_days=[6.0] * 30))
    assert quick.order and slow.order
    assert quick.packs == 4  # 86 of room on arrival: a fifth pack of 20 would overflow
    assert slow.packs == 5  # the slot is empty when it arrives: the whole container fits
    assert slow.packs * 20.0 > 100.0 - 20.0  # more than fits today, counted until arrival


def test_order_up_to_never_fills_beyond_the_links_maximum_level() -> None:
    """A maximum level below capacity caps the order: the packs fit under it on arrival."""
    readings = declining(90.0, 5.0, 15)  # 20 now, ~6 on arrival
    decision = PredictivePolicy(risk=0.001, max_level=60.0).decide(state(readings))
    assert decision.order
    assert decision.packs == 2  # 54 of room under 60 holds two packs of 20, not three


def test_a_predictive_link_orders_for_its_own_cover_period() -> None:
    """The link's cover_days sizes the order: a week's cover buys less than a month's."""

    def slot(cover_days: float) -> SlotLevel:
        history = tuple((r.at, r.level) for r in declining(200.0, 10.0, 17))
        return SlotLevel(
            device_id=1, link_id=1, slot="pods", unit="count", capacity=200.0,
            units_per_pack=10.0, level=history[-1][1], measured_at=history[-1][0],
            reorder_point=None, quantity=1, lead_time_days=2.0, history=history,
            now=history[-1][0] + timedelta(minutes=5), policy="predictive",
            risk=0.01, cover_days=cover_days,
        )  # fmt: skip

    week, month = link_policy(slot(7.0)), link_policy(slot(30.0))
    assert week.order and month.order
    assert week.packs < month.packs  # ordering "up to full" would make them equal
    # A month at 10 a day would not fit: capped by the room left on arrival.
    assert month.packs * 10.0 <= 200.0 - 10.0 * 2.0


def test_a_silent_sensor_widens_the_risk_instead_of_freezing_the_level() -> None:
    """Judged five days after the last report, the level is carried down and the risk grows."""
    readings = declining(90.0, 3.0, 20)  # 33 at the last report, 3 a day
    fresh = PredictivePolicy().decide(state(readings))
    silent = PredictivePolicy().decide(state(readings, now=readings[-1].at + timedelta(days=5)))
    assert fresh.level is not None and silent.level is not None
    assert silent.level < fresh.level - 10.0
    assert fresh.stockout_probability is not None and silent.stockout_probability is not None
    assert silent.stockout_probability > fresh.stockout_probability
    assert silent.order and not fresh.order


def test_a_new_device_plans_with_the_stores_record_of_silences() -> None:
    """A store whose devices now and then go quiet for a week makes a new device's risk higher."""
    from orders.domain.replenishment import report_gap_scenarios

    readings = declining(90.0, 5.0, 11)  # at 40: eight days of stock, never a missed day
    quiet_store = [(1.0, 0.9), (7.0, 0.1)]
    alone = PredictivePolicy().decide(state(readings, lead_time_days=1.0))
    told = PredictivePolicy().decide(
        state(readings, lead_time_days=1.0, store_report_gaps=quiet_store)
    )
    assert alone.stockout_probability is not None and told.stockout_probability is not None
    assert told.stockout_probability > 2.0 * alone.stockout_probability
    _, est = predict_runout(state(readings))
    assert est is not None
    blended = dict(report_gap_scenarios(est, quiet_store))
    assert sum(blended.values()) == pytest.approx(1.0) and blended[7.0] > 0.05
    assert report_gap_scenarios(est, []) == est.report_gaps
