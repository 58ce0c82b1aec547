"""Replenishment: predict a slot's run-out and decide whether, and how much, to order."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from orders.domain.consumption import (
    ConsumptionEstimate,
    Reading,
    estimate_consumption,
    latest_level,
)

__all__ = [
    "ConsumptionEstimate",
    "Decision",
    "Policy",
    "PredictivePolicy",
    "Reading",
    "SlotState",
    "ThresholdPolicy",
    "cautious_rate",
    "lead_time_scenarios",
    "open_order_scenarios",
    "predict_runout",
    "report_gap_scenarios",
    "stockout_probability",
]

# The store's promise counts as this many deliveries when blended with observed ones.
PROMISE_WEIGHT = 5.0
# The newest observed deliveries describe the carrier best.
MAX_OBSERVED_LEAD_TIMES = 30
# A promised lead time is a median at best: later more often than earlier. How often parcels
# are held up for days is the store's own record (observed lead times), not assumed here.
# (multiple of the promise, probability)
PROMISE_SPREAD: tuple[tuple[float, float], ...] = (
    (0.75, 0.15),
    (1.0, 0.40),
    (1.25, 0.20),
    (1.5, 0.15),
    (2.0, 0.10),
)
# The store's other devices count as this many of a device's own report gaps.
STORE_GAP_WEIGHT = 30.0
GAP_STEP_DAYS = 0.25
# Fewer observed transits than this say nothing about a carrier's tail.
MIN_TRANSITS = 5
# Above this chance of running out, order even if the pack will not fit on arrival.
URGENT_RISK = 0.5
# Do not wait for more than this between looks, even if the device reports rarely.
MAX_REVIEW_DAYS = 7.0
# Rates below this share of capacity per day count as "not consuming".
IDLE_RATE_FRACTION = 1e-6
# A jump's extra use varies around its learned mean by this share of it.
JUMP_SPREAD = 0.5
# More than this many jumps within one horizon is too unlikely to matter.
MAX_JUMPS = 3


@dataclass(frozen=True)
class SlotState:
    """Everything a policy may look at for one device link's slot."""

    capacity: float  # full level in the slot's unit (e.g. 100 for %, 50 pods)
    units_per_pack: float  # how much one pack of the linked product adds to the level
    readings: Sequence[Reading]  # any order, may contain duplicates
    now: datetime
    lead_time_days: float  # the store's delivery lead time
    observed_lead_times_days: Sequence[float] = ()  # past placed->delivered durations
    order_open: bool = False  # an order for this link is still open
    # When that open order is expected (the carrier's estimate, else the store's promise).
    open_order_arrives_at: datetime | None = None
    # The open order already has its one replacement (a late-parcel reorder).
    open_order_replaced: bool = False
    # When the open order left the store (None: not shipped yet), and how long parcels of its
    # carrier from this store took from shipping to the door.
    open_order_shipped_at: datetime | None = None
    transit_days: Sequence[float] = ()
    # How long the store's devices of this kind wait between reports, (days, probability):
    # how often and how long devices like this one go quiet, before this one has shown it.
    store_report_gaps: Sequence[tuple[float, float]] = ()

    def __post_init__(self) -> None:
        if not self.capacity > 0 or not self.units_per_pack > 0:
            raise ValueError("capacity and units_per_pack must be positive")
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")


@dataclass(frozen=True)
class Decision:
    """What a policy decided for a slot, and the figures it based that on (None: not known)."""

    order: bool
    packs: int
    # order_open, order_open_late, late_reorder, no_data, enough_stock, below_reorder_point,
    # runout_risk, alert_low, fallback_*
    reason: str
    level: float | None
    rate_per_day: float | None
    runout_at: datetime | None
    stockout_probability: float | None


class Policy(Protocol):
    """Anything that turns a slot's state into a decision."""

    def decide(self, state: SlotState) -> Decision: ...


def _no_order(reason: str, level: float | None = None) -> Decision:
    return Decision(False, 0, reason, level, None, None, None)


def _packs_for(need: float, room: float, units_per_pack: float) -> int:
    """Whole packs covering `need`, never more than fit in `room`, and at least one."""
    wanted = math.ceil(need / units_per_pack - 1e-9)
    fits = math.floor(room / units_per_pack + 1e-9)
    return max(1, min(wanted, fits))


@dataclass(frozen=True)
class ThresholdPolicy:
    """Fixed reorder point: order up to a level once the latest reading is at or below it."""

    reorder_point: float
    order_up_to: float | None = None  # None = capacity

    def decide(self, state: SlotState) -> Decision:
        """Order when the newest reading is at or below the reorder point."""
        if state.order_open:
            return _no_order("order_open")
        level = latest_level(state.readings, state.now)
        if level is None:
            return _no_order("no_data")
        if level > self.reorder_point:
            return _no_order("enough_stock", level)
        top = min(state.capacity if self.order_up_to is None else self.order_up_to, state.capacity)
        room = top - level
        packs = _packs_for(room, room, state.units_per_pack)
        return Decision(True, packs, "below_reorder_point", level, None, None, None)


def lead_time_scenarios(
    lead_time_days: float, observed: Sequence[float]
) -> list[tuple[float, float]]:
    """Possible delivery durations (days) with probabilities, from history and the promise.

    Observed durations dominate as they accumulate; the promise keeps a share (as if it were
    PROMISE_WEIGHT deliveries) so a short history cannot rule out a late parcel.
    """
    seen = [x for x in observed if math.isfinite(x) and x >= 0][-MAX_OBSERVED_LEAD_TIMES:]
    # Rounding up to a quarter day keeps the scenarios few without making them optimistic.
    seen = [math.ceil(x * 4.0) / 4.0 for x in seen]
    promise_share = PROMISE_WEIGHT / (PROMISE_WEIGHT + len(seen))
    base = max(lead_time_days, 0.0)
    scenarios = [(base * m, p * promise_share) for m, p in PROMISE_SPREAD]
    for x in seen:
        scenarios.append((x, (1.0 - promise_share) / len(seen)))
    merged: dict[float, float] = {}
    for days, p in scenarios:
        merged[days] = merged.get(days, 0.0) + p
    return sorted(merged.items())


def open_order_scenarios(
    now: datetime,
    arrives_at: datetime,
    shipped_at: datetime | None,
    transit_days: Sequence[float],
) -> list[tuple[float, float]]:
    """Days until an open order arrives, with probabilities.

    Before shipping, or without the carrier's record, the expected day alone. Once shipped, the
    carrier's observed transits that are still running at this age say how much later than
    the expected day it may come (never earlier: the carrier's estimate is its best word).
    A parcel older than every observed transit is taken to need as long again.
    """
    left = max((arrives_at - now).total_seconds() / 86_400.0, 0.0)
    seen = [x for x in transit_days if math.isfinite(x) and x >= 0.0]
    if shipped_at is None or len(seen) < MIN_TRANSITS:
        return [(left, 1.0)]
    age = max((now - shipped_at).total_seconds() / 86_400.0, 0.0)
    running = [x - age for x in seen if x > age]
    if not running:
        return [(max(left, age), 1.0)]
    merged: dict[float, float] = {}
    for rest in running:
        days = math.ceil(max(left, rest) * 4.0) / 4.0
        merged[days] = merged.get(days, 0.0) + 1.0 / len(running)
    return sorted(merged.items())


def report_gap_scenarios(
    est: ConsumptionEstimate, store_gaps: Sequence[tuple[float, float]]
) -> tuple[tuple[float, float], ...]:
    """The wait for this device's next report: its own gaps, blended with the store's record.

    The store's devices count as STORE_GAP_WEIGHT of this device's gaps, so a new device
    plans with what devices like it do, and its own habits take over as they show.
    """
    total = sum(q for gap, q in store_gaps if gap > 0.0 and q > 0.0)
    if total <= 0.0:
        return est.report_gaps
    own = max(est.readings_used - 1, 0)
    store_share = STORE_GAP_WEIGHT / (STORE_GAP_WEIGHT + own)
    merged: dict[float, float] = {gap: q * (1.0 - store_share) for gap, q in est.report_gaps}
    for gap, q in store_gaps:
        if gap > 0.0 and q > 0.0:
            key = math.ceil(gap / GAP_STEP_DAYS) * GAP_STEP_DAYS
            merged[key] = merged.get(key, 0.0) + store_share * q / total
    return tuple(sorted(merged.items()))


def _normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def cautious_rate(est: ConsumptionEstimate) -> float:
    """The rate to plan with: the long-run estimate, or the recent one if clearly faster."""
    recent = est.recent_rate if est.recent_rate is not None else 0.0
    return max(est.rate_per_day, recent, 0.0)


def _poisson(k: int, mean: float) -> float:
    """Chance of exactly k events when `mean` are expected."""
    return math.exp(-mean) * mean**k / math.factorial(k)


def stockout_probability(
    est: ConsumptionEstimate, horizons: Sequence[tuple[float, float]], stale_days: float = 0.0
) -> float:
    """Chance the slot is empty within each horizon (days), averaged over their probabilities.

    `stale_days` is the time since the latest reading: the level was carried forward over it at
    the estimated rate, so the uncertainty of that stretch is added as if it were horizon.
    """
    rate = cautious_rate(est)
    stale = max(stale_days, 0.0)
    total = 0.0
    for days, p in horizons:
        span = days + stale
        # Rate error grows with the horizon, day-to-day variation with its square root.
        var = (est.rate_stderr * span) ** 2 + est.daily_sd**2 * span + est.level_sd**2
        extra = est.jump_extra_days
        for k in range(MAX_JUMPS + 1):
            # k jumps in the horizon, each its learned extra use give or take its spread.
            weight = _poisson(k, est.jump_rate_per_day * span)
            gap = rate * (days + k * extra) - est.level
            spread = var + k * (JUMP_SPREAD * extra * rate) ** 2
            if spread <= 0.0:
                total += p * weight * (1.0 if gap >= 0.0 else 0.0)
            else:
                total += p * weight * _normal_cdf(gap / math.sqrt(spread))
    return min(max(total, 0.0), 1.0)


def _estimate(state: SlotState) -> ConsumptionEstimate | None:
    return estimate_consumption(state.readings, state.now, state.capacity)


def _runout_at(est: ConsumptionEstimate, state: SlotState) -> datetime | None:
    rate = cautious_rate(est)
    if rate <= IDLE_RATE_FRACTION * state.capacity:
        return None
    return state.now + timedelta(days=est.level / rate)


def predict_runout(state: SlotState) -> tuple[datetime | None, ConsumptionEstimate | None]:
    """When the slot will run empty at the current rate (None if idle or unknown), and the rate."""
    est = _estimate(state)
    if est is None:
        return None, None
    return _runout_at(est, state), est


@dataclass(frozen=True)
class PredictivePolicy:
    """Order when the chance of running out before a delivery would arrive exceeds `risk`."""

    risk: float = 0.01
    cover_days: float = 30.0  # stock a delivery should last, when max_level is None
    max_level: float | None = None  # set: order up to this level instead of a cover period
    safety_days: float = 0.5  # extra margin on top of lead time and the wait for the next look
    fallback_fraction: float = 0.3  # reorder point (share of capacity) while the rate is unknown
    # Opt-in: once the open parcel is this many days past its expected day, order one
    # replacement (the smallest pack). None: never two orders open.
    late_reorder_days: float | None = None

    def decide(self, state: SlotState) -> Decision:
        """Predict run-out and order if waiting for the next report would be too risky."""
        if state.order_open:
            return self._while_open(state)
        top = state.capacity if self.max_level is None else min(self.max_level, state.capacity)
        est = _estimate(state)
        if est is None:
            return self._fallback(state, top)

        scenarios = lead_time_scenarios(state.lead_time_days, state.observed_lead_times_days)
        # Not ordering now means ordering at the next report at the earliest, and reports go
        # missing: weigh every lead time against every plausible wait for the next report.
        merged: dict[float, float] = {}
        for lead, p in scenarios:
            for gap, q in report_gap_scenarios(est, state.store_report_gaps):
                # Quarter days on both sides: many pairs share a sum, so the sums are merged.
                span = lead + min(gap, MAX_REVIEW_DAYS) + self.safety_days
                merged[span] = merged.get(span, 0.0) + p * q
        horizons = list(merged.items())
        stale = max((state.now - est.as_of).total_seconds() / 86_400.0, 0.0)
        risk_now = stockout_probability(est, horizons, stale)
        rate = cautious_rate(est)
        runout = _runout_at(est, state)
        if risk_now <= self.risk:
            return Decision(False, 0, "enough_stock", est.level, rate, runout, risk_now)

        mean_lead = sum(lead * p for lead, p in scenarios)
        at_arrival = max(est.level - rate * mean_lead, 0.0)
        if top - at_arrival < state.units_per_pack and risk_now < URGENT_RISK:
            # Not one pack would fit on arrival: the order would only overflow and block a
            # better-timed one, so wait unless running out is more likely than not.
            return Decision(False, 0, "enough_stock", est.level, rate, runout, risk_now)
        target = top if self.max_level is not None else min(top, rate * self._cover(rate, top))
        packs = _packs_for(target - at_arrival, top - at_arrival, state.units_per_pack)
        return Decision(True, packs, "runout_risk", est.level, rate, runout, risk_now)

    def _while_open(self, state: SlotState) -> Decision:
        """No second order while one is open; but say when the slot empties before it arrives.

        `order_open_late`: running out before the open order's expected arrival (plus the
        safety margin) is more likely than not, e.g. after the carrier moved the day.
        """
        if state.open_order_arrives_at is not None and self._reorder_late(state):
            return Decision(True, 1, "late_reorder", None, None, None, None)
        est = _estimate(state)
        if est is None or state.open_order_arrives_at is None:
            return _no_order("order_open")
        remaining = open_order_scenarios(
            state.now, state.open_order_arrives_at, state.open_order_shipped_at, state.transit_days
        )
        stale = max((state.now - est.as_of).total_seconds() / 86_400.0, 0.0)
        horizons = [(days + self.safety_days, p) for days, p in remaining]
        risk_now = stockout_probability(est, horizons, stale)
        # A warning, not an order: `risk` (what ordering accepts) would cry wolf on every parcel.
        reason = "order_open_late" if risk_now > URGENT_RISK else "order_open"
        runout = _runout_at(est, state)
        return Decision(False, 0, reason, est.level, cautious_rate(est), runout, risk_now)

    def _reorder_late(self, state: SlotState) -> bool:
        """The opt-in replacement: the parcel is late by the link's days and not yet replaced."""
        if self.late_reorder_days is None or state.open_order_replaced:
            return False
        assert state.open_order_arrives_at is not None
        late = (state.now - state.open_order_arrives_at).total_seconds() / 86_400.0
        return late > self.late_reorder_days

    def _cover(self, rate: float, top: float) -> float:
        """Days a delivery should last: the cover period, longer for slow consumers.

        Square-root law (economic order quantity): orders cost the same whatever their size,
        so a slow consumer should buy for longer than a fast one; the geometric mean of the
        cover period and the days a full slot lasts does that, never below the cover period.
        """
        if rate <= 0.0:
            return self.cover_days
        return max(self.cover_days, math.sqrt(self.cover_days * top / rate))

    def _fallback(self, state: SlotState, top: float) -> Decision:
        """Too little history for a rate: behave like a generous fixed reorder point."""
        level = latest_level(state.readings, state.now)
        if level is None:
            return _no_order("no_data")
        if level > self.fallback_fraction * state.capacity:
            return _no_order("fallback_enough_stock", level)
        room = top - level
        packs = _packs_for(room, room, state.units_per_pack)
        return Decision(True, packs, "fallback_below_reorder_point", level, None, None, None)
