"""The consumption-rate estimator on synthetic series with known rates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.consumption import (
    Reading,
    clean_readings,
    estimate_consumption,
    latest_level,
    split_segments,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CAPACITY = 100.0


def series(
    rate: float,
    days: int,
    *,
    start: float = 95.0,
    noise: float = 0.0,
    refill_below: float | None = None,
    seed: int = 0,
) -> list[Reading]:
    """Daily readings of a slot used at `rate` per day, optionally noisy and refilled."""
    rng = random.Random(seed)
    level = start
    out = []
    for day in range(days):
        out.append(Reading(T0 + timedelta(days=day), max(level + rng.gauss(0, noise), 0.0)))
        level -= rate
        if refill_below is not None and level < refill_below:
            level = start
    return out


def now_after(readings: list[Reading]) -> datetime:
    return max(r.at for r in readings) + timedelta(hours=1)


def test_clean_series_gives_its_exact_rate() -> None:
    """A noiseless linear series yields its slope and the level now."""
    readings = series(2.0, 20)
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(2.0, abs=1e-6)
    assert est.level == pytest.approx(95.0 - 2.0 * 19 - 2.0 / 24, abs=1e-3)


def test_noisy_series_is_within_tolerance_of_the_truth() -> None:
    """Reading noise of 2 units around a 3 per day decline still gives about 3 per day."""
    readings = series(3.0, 30, noise=2.0, seed=4)
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(3.0, abs=0.3)
    assert 0.0 < est.rate_stderr < 0.5


def test_refill_starts_a_new_segment() -> None:
    """Level jumps up at refills: segments split there and the rate ignores the jumps."""
    readings = series(4.0, 45, refill_below=20.0)
    segments = split_segments(clean_readings(readings, now_after(readings)), CAPACITY)
    assert len(segments) == 3
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.segments == 3
    assert est.rate_per_day == pytest.approx(4.0, abs=0.05)


def test_refill_smaller_than_a_days_use_is_still_seen() -> None:
    """A one-pack top-up that nets less than a day's use is measured against the drift."""
    level, readings = 90.0, []
    for day in range(30):
        readings.append(Reading(T0 + timedelta(days=day), level))
        level -= 10.0
        if day % 4 == 3:
            level += 18.0  # the delivery lands overnight: +8 on the day, not +18
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(10.0, abs=0.5)


def test_gaps_in_reporting_do_not_bias_the_rate() -> None:
    """Missing a week of reports leaves the estimate on the true rate."""
    readings = [r for i, r in enumerate(series(1.5, 40, noise=0.5, seed=2)) if not 10 <= i < 18]
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(1.5, abs=0.15)
    assert max(gap for gap, _ in est.report_gaps) >= 8.0


def test_duplicates_and_out_of_order_readings_change_nothing() -> None:
    """Shuffled readings with repeats give the same estimate as the clean series."""
    readings = series(2.5, 25, noise=1.0, seed=7)
    messy = readings + readings[::3]
    random.Random(1).shuffle(messy)
    now = now_after(readings)
    assert estimate_consumption(messy, now, CAPACITY) == estimate_consumption(
        readings, now, CAPACITY
    )


def test_counter_reset_to_full_is_a_new_segment() -> None:
    """A counter that resets to full mid-series does not drag the rate down."""
    readings = series(2.0, 30)
    reset = [
        Reading(r.at, r.level + (95.0 - readings[15].level) if i >= 15 else r.level)
        for i, r in enumerate(readings)
    ]
    est = estimate_consumption(reset, now_after(reset), CAPACITY)
    assert est is not None
    assert est.segments == 2
    assert est.rate_per_day == pytest.approx(2.0, abs=0.05)


def test_a_single_glitch_to_zero_barely_moves_the_rate() -> None:
    """One reading of 0 (a counter that reset and recovered) is an outlier, not a trend."""
    readings = series(2.0, 30, noise=0.5, seed=3)
    readings[20] = Reading(readings[20].at, 0.0)
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(2.0, abs=0.25)


def test_readings_from_the_future_are_ignored() -> None:
    """A clock jump a year ahead neither counts as a refill nor as the latest level."""
    readings = series(2.0, 20)
    now = now_after(readings)
    jumped = [*readings, Reading(now + timedelta(days=365), 99.0)]
    assert estimate_consumption(jumped, now, CAPACITY) == estimate_consumption(
        readings, now, CAPACITY
    )
    assert latest_level(jumped, now) == pytest.approx(readings[-1].level)


def test_same_level_every_day_is_a_rate_of_about_zero() -> None:
    """A slot that is not used reports the same level and has a rate near zero."""
    readings = [Reading(T0 + timedelta(days=d), 60.0) for d in range(30)]
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(0.0, abs=1e-9)
    assert est.level == pytest.approx(60.0)


def test_time_running_empty_counts_no_consumption() -> None:
    """Days spent at zero after running out do not flatten the rate."""
    readings = series(5.0, 14, start=60.0) + [
        Reading(T0 + timedelta(days=d), 0.0) for d in range(14, 30)
    ]
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.rate_per_day == pytest.approx(5.0, abs=0.1)


def test_recent_speed_up_is_reported() -> None:
    """After a quiet fortnight use triples; the recent rate shows it before the long-run one."""
    quiet = series(1.0, 20, start=95.0)
    busy = [Reading(T0 + timedelta(days=20 + d), 75.0 - 3.0 * d) for d in range(7)]
    readings = quiet + busy
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.recent_rate is not None
    assert est.recent_rate > 2.5 > est.rate_per_day


def test_too_little_history_gives_no_estimate() -> None:
    """One reading, or two an hour apart, is not a rate."""
    one = [Reading(T0, 50.0)]
    two = [Reading(T0, 50.0), Reading(T0 + timedelta(hours=1), 49.0)]
    assert estimate_consumption(one, T0 + timedelta(hours=2), CAPACITY) is None
    assert estimate_consumption(two, T0 + timedelta(hours=2), CAPACITY) is None


def test_level_after_a_silence_comes_from_the_fresh_reading() -> None:
    """Back from nine days offline, the new low reading sets the level, not older points."""
    # 30 days at 1 a day (so the rate looks slow), then 4 a day while the device was silent.
    readings = series(1.0, 30, start=90.0)
    readings.append(Reading(T0 + timedelta(days=38), 25.0))
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.level == pytest.approx(25.0, abs=1.0)


def test_four_days_of_readings_give_no_rate() -> None:
    """Five noisy readings over four days are too little to trust a rate: None."""
    readings = series(1.0, 5, noise=2.0, seed=1)
    assert estimate_consumption(readings, now_after(readings), CAPACITY) is None
    longer = series(1.0, 8, noise=2.0, seed=1)
    assert estimate_consumption(longer, now_after(longer), CAPACITY) is not None


def test_one_busy_day_after_a_refill_is_not_a_new_habit() -> None:
    """Two days after a refill, one heavy day does not yet count as a faster recent rate."""
    readings = series(2.0, 20, start=90.0)
    readings += [
        Reading(T0 + timedelta(days=20), 100.0),
        Reading(T0 + timedelta(days=21), 88.0),  # a 12-unit day
        Reading(T0 + timedelta(days=22), 86.0),
    ]
    est = estimate_consumption(readings, now_after(readings), CAPACITY)
    assert est is not None
    assert est.recent_rate is None
    assert est.rate_per_day == pytest.approx(2.0, abs=1.0)
