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
JUMP_NOISE_MULTIPLE = 4.0
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
    report_interval_days: float  # typical time between reports
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
    """Cut clean readings where the level jumps up (a refill or a counter reset)."""
    if not readings:
        return []
    diffs = [b.level - a.level for a, b in zip(readings, readings[1:], strict=False)]
    # Differences of neighbours carry twice the reading noise, hence the sqrt(2).
    noise = _mad_sigma(diffs) / math.sqrt(2.0)
    scale = capacity if capacity else max(abs(r.level) for r in readings)
    threshold = max(JUMP_FRACTION * scale, JUMP_NOISE_MULTIPLE * math.sqrt(2.0) * noise)
    segments: list[list[Reading]] = [[readings[0]]]
    for prev, cur in zip(readings, readings[1:], strict=False):
        if cur.level - prev.level > threshold:
            segments.append([cur])
        else:
            segments[-1].append(cur)
    return segments


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
    clean = clean_readings(readings, now, lookback_days)
    segments = split_segments(clean, capacity)
    if not segments:
        return None
    last_at = clean[-1].at
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
        sigma = _mad_sigma(residuals)
        cut = HUBER_K * sigma
        idx = 0
        for rs in robust:
            for j in range(len(rs)):
                a = abs(residuals[idx])
                rs[j] = 1.0 if a <= cut or a == 0.0 else cut / a
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

    gaps = [b - a for a, b in zip(seg_t[-1], seg_t[-1][1:], strict=False)] or [
        step[0] for step in steps
    ]
    return ConsumptionEstimate(
        rate_per_day=rate,
        rate_stderr=stderr,
        daily_sd=daily_sd,
        level=level_now,
        level_sd=level_sd,
        as_of=last_at,
        report_interval_days=median(gaps),
        readings_used=n,
        segments=len(segments),
    )
