"""Consumption-rate estimation from one slot's supply-level readings (pure maths, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

SECONDS_PER_DAY = 86_400.0

# A reading stamped this far past `now` comes from a device whose clock jumped; it is ignored.
FUTURE_TOLERANCE = timedelta(hours=1)
# Older readings say little about today's habits and cost time; the hub may send more.
LOOKBACK_DAYS = 60.0
# Recent behaviour matters most: a reading this many days old counts half as much.
HALF_LIFE_DAYS = 14.0
# A rise of at least this share of capacity (and well above the noise) is a refill or reset.
JUMP_FRACTION = 0.05
JUMP_NOISE_MULTIPLE = 3.0
# At or below this share of capacity the slot is empty; staying there is not consumption.
EMPTY_FRACTION = 0.005
# Huber's tuning constant: residuals beyond k robust sigmas lose influence.
HUBER_K = 1.345
ROBUST_ITERATIONS = 4
# Pairs closer than this in time give slopes dominated by noise; the initial guess skips them.
MIN_PAIR_DAYS = 0.25
# Below this much within-segment history there is no trustworthy rate.
MIN_PAIRS = 2
MIN_SPAN_DAYS = 1.5
# The level now is read from the last few points of the current segment.
LEVEL_POINTS = 3
# Report gaps are grouped in steps of this many days to keep the scenarios few.
GAP_STEP_DAYS = 0.25
# Smallest residual scale, as a share of capacity, so flat data cannot zero every weight.
SIGMA_FLOOR = 1e-4


@dataclass(frozen=True)
class Reading:
    """One measured level of a slot, in the slot's unit, at a tz-aware UTC time."""

    at: datetime
    level: float


@dataclass(frozen=True)
class ConsumptionEstimate:
    """A slot's consumption rate with its uncertainty and the level it implies now."""

    rate_per_day: float  # units consumed per day; may be slightly negative from noise
    rate_stderr: float  # standard error of rate_per_day
    daily_sd: float  # day-to-day variability of consumption, units per sqrt(day)
    level: float  # estimated level at `now`, never below zero
    level_sd: float  # uncertainty of that level
    as_of: datetime  # time of the latest usable reading
    report_gaps: tuple[tuple[float, float], ...]  # (days between reports, probability)
    readings_used: int
    segments: int


def clean_readings(
    readings: Sequence[Reading], now: datetime, lookback_days: float = LOOKBACK_DAYS
) -> list[Reading]:
    """Sort by time, merge duplicates and drop future, stale or non-finite readings."""
    latest_allowed = now + FUTURE_TOLERANCE
    earliest = now - timedelta(days=lookback_days)
    by_time: dict[datetime, list[float]] = {}
    for r in readings:
        if earliest <= r.at <= latest_allowed and math.isfinite(r.level):
            by_time.setdefault(r.at, []).append(r.level)
    return [Reading(at, sum(v) / len(v)) for at, v in sorted(by_time.items())]


def latest_level(readings: Sequence[Reading], now: datetime) -> float | None:
    """The newest believable reading's level (what a fixed reorder point looks at)."""
    latest_allowed = now + FUTURE_TOLERANCE
    best: Reading | None = None
    for r in readings:
        if r.at <= latest_allowed and math.isfinite(r.level) and (best is None or r.at > best.at):
            best = r
    return None if best is None else max(best.level, 0.0)


def _mad_sigma(values: Sequence[float]) -> float:
    """Robust standard deviation: 1.4826 times the median absolute deviation."""
    if not values:
        return 0.0
    mid = median(values)
    return 1.4826 * median(abs(v - mid) for v in values)


def split_segments(readings: Sequence[Reading], capacity: float | None) -> list[list[Reading]]:
    """Cut clean readings where the level rises well above its usual drift (refill or reset)."""
    if not readings:
        return []
    steps = [
        ((b.at - a.at).total_seconds() / SECONDS_PER_DAY, b.level - a.level)
        for a, b in zip(readings, readings[1:], strict=False)
    ]
    # Most neighbours differ by consumption, so the median slope is the drift; measuring rises
    # against it finds refills smaller than a day's use, which raw differences would miss.
    slopes = [dy / dt for dt, dy in steps if dt >= MIN_PAIR_DAYS]
    drift = min(median(slopes), 0.0) if slopes else 0.0
    excess = [dy - drift * dt for dt, dy in steps]
    scale = capacity if capacity else max(abs(r.level) for r in readings)
    threshold = max(JUMP_FRACTION * scale, JUMP_NOISE_MULTIPLE * _mad_sigma(excess))
    segments: list[list[Reading]] = [[readings[0]]]
    for cur, rise in zip(readings[1:], excess, strict=True):
        if rise > threshold:
            segments.append([cur])
        else:
            segments[-1].append(cur)
    return segments


def drop_empty_runs(readings: Sequence[Reading], capacity: float | None) -> list[Reading]:
    """Keep only the first of consecutive empty readings: an empty slot shows no consumption."""
    scale = capacity if capacity else max((abs(r.level) for r in readings), default=0.0)
    empty = EMPTY_FRACTION * scale
    kept: list[Reading] = []
    for r in readings:
        if r.level <= empty and kept and kept[-1].level <= empty:
            continue
        kept.append(r)
    return kept


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    """Median of values under weights, for (value, weight) pairs with positive total weight."""
    pairs.sort()
    half = sum(w for _, w in pairs) / 2.0
    acc = 0.0
    for value, weight in pairs:
        acc += weight
        if acc >= half:
            return value
    return pairs[-1][0]


def _gap_distribution(gaps: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """How long until the next report, as (days, probability) rounded up to GAP_STEP_DAYS."""
    counts: dict[float, int] = {}
    for gap in gaps:
        # Readings a moment apart (re-sent, split records) are one look at the slot, not two.
        if gap >= MIN_PAIR_DAYS:
            key = math.ceil(gap / GAP_STEP_DAYS) * GAP_STEP_DAYS
            counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    if not total:
        return ((1.0, 1.0),)
    return tuple((gap, n / total) for gap, n in sorted(counts.items()))


def estimate_consumption(
    readings: Sequence[Reading],
    now: datetime,
    capacity: float | None = None,
    *,
    half_life_days: float = HALF_LIFE_DAYS,
    lookback_days: float = LOOKBACK_DAYS,
) -> ConsumptionEstimate | None:
    """Estimate the consumption rate per day, or None when the history is too thin.

    The slope is shared by all segments (each refill gets its own intercept), fitted by
    time-decayed least squares made robust with Huber weights.
    """
    seen = clean_readings(readings, now, lookback_days)
    clean = drop_empty_runs(seen, capacity)
    segments = split_segments(clean, capacity)
    if not segments:
        return None
    last_at = clean[-1].at
    scale = capacity if capacity else max(max(abs(r.level) for r in clean), 1.0)
    # Times in days relative to the latest reading keep the numbers small.
    seg_t = [[(r.at - last_at).total_seconds() / SECONDS_PER_DAY for r in s] for s in segments]
    seg_y = [[r.level for r in s] for s in segments]
    decay = math.log(2.0) / half_life_days
    seg_w = [[math.exp(decay * t) for t in ts] for ts in seg_t]

    # Initial slope: weighted median of neighbour slopes, robust to a glitching reading.
    pair_slopes: list[tuple[float, float]] = []
    steps: list[tuple[float, float, float]] = []  # (dt, dy, weight) for the variability
    span = 0.0
    for ts, ys, ws in zip(seg_t, seg_y, seg_w, strict=True):
        span += ts[-1] - ts[0]
        for i in range(1, len(ts)):
            dt = ts[i] - ts[i - 1]
            dy = ys[i] - ys[i - 1]
            steps.append((dt, dy, ws[i]))
            if dt >= MIN_PAIR_DAYS:
                pair_slopes.append((dy / dt, ws[i] * dt))
    if len(steps) < MIN_PAIRS or span < MIN_SPAN_DAYS or not pair_slopes:
        return None
    slope = _weighted_median(pair_slopes)

    robust = [[1.0] * len(ts) for ts in seg_t]
    fitted_means: list[tuple[float, float]] = []
    sigma = 0.0
    for _ in range(ROBUST_ITERATIONS):
        # Residuals around the current slope with each segment's own weighted intercept.
        residuals: list[float] = []
        fitted_means = []
        for ts, ys, ws, rs in zip(seg_t, seg_y, seg_w, robust, strict=True):
            wsum = sum(w * h for w, h in zip(ws, rs, strict=True))
            tbar = sum(w * h * t for w, h, t in zip(ws, rs, ts, strict=True)) / wsum
            ybar = sum(w * h * y for w, h, y in zip(ws, rs, ys, strict=True)) / wsum
            fitted_means.append((tbar, ybar))
            residuals.extend(y - ybar - slope * (t - tbar) for t, y in zip(ts, ys, strict=True))
        # A floor keeps weights finite when most residuals are exactly zero (flat, quantised data).
        sigma = max(_mad_sigma(residuals), SIGMA_FLOOR * scale)
        cut = HUBER_K * sigma
        idx = 0
        for rs in robust:
            for j in range(len(rs)):
                a = abs(residuals[idx])
                rs[j] = 1.0 if a <= cut else cut / a
                idx += 1
        # Weighted least-squares slope with the new weights (within-segment deviations).
        sxy = sxx = 0.0
        for ts, ys, ws, rs in zip(seg_t, seg_y, seg_w, robust, strict=True):
            wsum = sum(w * h for w, h in zip(ws, rs, strict=True))
            tbar = sum(w * h * t for w, h, t in zip(ws, rs, ts, strict=True)) / wsum
            ybar = sum(w * h * y for w, h, y in zip(ws, rs, ys, strict=True)) / wsum
            for t, y, w, h in zip(ts, ys, ws, rs, strict=True):
                sxy += w * h * (t - tbar) * (y - ybar)
                sxx += w * h * (t - tbar) ** 2
        if sxx <= 0.0:
            return None
        slope = sxy / sxx

    # Sandwich (heteroscedasticity-robust) standard error of the shared slope.
    n = len(clean)
    params = 1 + len(segments)
    meat = 0.0
    sxx = 0.0
    for (tbar, ybar), ts, ys, ws, rs in zip(fitted_means, seg_t, seg_y, seg_w, robust, strict=True):
        for t, y, w, h in zip(ts, ys, ws, rs, strict=True):
            wt = w * h
            r = y - ybar - slope * (t - tbar)
            meat += (wt * (t - tbar) * r) ** 2
            sxx += wt * (t - tbar) ** 2
    stderr = math.sqrt(meat) / sxx * math.sqrt(n / max(n - params, 1))

    # Variability: how far each step strays from the fitted rate, per day of the step.
    step_err = [dy - slope * dt for dt, dy, _ in steps]
    clip = 6.0 * max(_mad_sigma(step_err), 1e-12)
    num = sum(w * min(abs(e), clip) ** 2 for e, (_, _, w) in zip(step_err, steps, strict=True))
    den = sum(w * max(dt, 1e-3) for dt, _, w in steps)
    daily_sd = math.sqrt(num / den)

    # Level: the newest few points of the current segment, carried forward to now (median,
    # so one glitching reading cannot trigger or suppress an order on its own).
    cur_t, cur_y = seg_t[-1][-LEVEL_POINTS:], seg_y[-1][-LEVEL_POINTS:]
    level_then = median(y - slope * t for t, y in zip(cur_t, cur_y, strict=True))
    ahead = max((now - last_at).total_seconds() / SECONDS_PER_DAY, 0.0)
    rate = -slope
    level_now = max(level_then - max(rate, 0.0) * ahead, 0.0)
    level_sd = sigma / math.sqrt(len(cur_t))

    times = [r.at for r in seen]
    report_gaps = _gap_distribution(
        [(b - a).total_seconds() / SECONDS_PER_DAY for a, b in zip(times, times[1:], strict=False)]
    )
    return ConsumptionEstimate(
        rate_per_day=rate,
        rate_stderr=stderr,
        daily_sd=daily_sd,
        level=level_now,
        level_sd=level_sd,
        as_of=last_at,
        report_gaps=report_gaps,
        readings_used=n,
        segments=len(segments),
    )
