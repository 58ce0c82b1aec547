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
ROBUST_ITERATIONS = 3
# Pairs closer than this in time give slopes dominated by noise; the initial guess skips them.
MIN_PAIR_DAYS = 0.25
# Below this much within-segment history there is no trustworthy rate: two or three noisy
# readings a day apart can make a slow consumer look several times faster than it is.
MIN_PAIRS = 4
MIN_SPAN_DAYS = 5.0
# The level now is read from the last few points of the current segment, if recent: after a
# silence, older points carried forward at a misjudged rate would outvote the fresh reading.
LEVEL_POINTS = 3
LEVEL_WINDOW_DAYS = 2.0
# Readings this many apart show how consumption wanders beyond reading noise.
LONG_LAG = 4
SCATTER_CLIP = 5.0
# Consumption varies from day to day by at least this coefficient of variation.
MIN_WANDER_CV = 0.5
# Window for the check that consumption has not sped up lately (after a holiday, guests).
RECENT_DAYS = 7.0
# A shorter recent window (just after a refill) is mostly one or two days: one busy day would
# pass for a new habit and trigger an order with the container still well filled.
MIN_RECENT_SPAN_DAYS = 4.0
# The recent rate counts only when clearly faster: it is lowered by this many standard errors.
RECENT_STDERRS = 1.0
# Report gaps are grouped in steps of this many days to keep the scenarios few.
GAP_STEP_DAYS = 0.25
# Smallest residual scale, as a share of capacity, so flat data cannot zero every weight.
SIGMA_FLOOR = 1e-4
# A step using more than this many standard deviations above the fitted rate (wander and
# reading noise together) is a jump the Gaussian wander does not explain: guests, a big wash.
JUMP_SIGMAS = 3.0
# Until jumps are seen, half of one is assumed per lookback window: never none, and a few
# observed ones outweigh it.
PRIOR_JUMPS = 0.5
# The device's next silence: half a gap twice as long as its longest yet is assumed on top
# of those seen, so a device that never went quiet may still, a bit longer than it ever did.
PRIOR_SILENCES = 0.5
SILENCE_STRETCH = 2.0


@dataclass(frozen=True)
class Reading:
    """One measured level of a slot, in the slot's unit, at a tz-aware UTC time."""

    at: datetime
    level: float

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("reading time must be timezone-aware")


@dataclass(frozen=True)
class ConsumptionEstimate:
    """A slot's consumption rate with its uncertainty and the level it implies now."""

    rate_per_day: float  # units consumed per day; may be slightly negative from noise
    rate_stderr: float  # standard error of rate_per_day
    daily_sd: float  # day-to-day wander of consumption, units per sqrt(day)
    noise_sd: float  # reading noise, units
    level: float  # estimated level at `now`, never below zero
    level_sd: float  # uncertainty of that level
    as_of: datetime  # time of the latest usable reading
    report_gaps: tuple[tuple[float, float], ...]  # (days between reports, probability)
    # The last RECENT_DAYS of the current segment alone, minus one standard error, when that
    # window is long enough: a cautious check that use has not just sped up.
    recent_rate: float | None
    readings_used: int
    segments: int
    # Jumps beyond the wander, learned from this slot's steps: chance per day, and their mean
    # extra use in days of the fitted rate.
    jump_rate_per_day: float = 0.0
    jump_extra_days: float = 0.0


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
    return 1.4826 * median([abs(v - mid) for v in values])


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


def _split_scatter(
    seg_t: list[list[float]], seg_y: list[list[float]], seg_w: list[list[float]], slope: float
) -> tuple[float, float]:
    """Split scatter about the fitted slope into consumption wander (per day) and reading noise.

    Wander accumulates with time, reading noise does not: compare neighbours with readings
    LONG_LAG apart (a variogram at two lags). Returns (wander variance per day, noise variance).
    """
    found: dict[int, tuple[float, float]] = {}
    for lag in (1, LONG_LAG):
        errs: list[tuple[float, float, float]] = []
        for ts, ys, ws in zip(seg_t, seg_y, seg_w, strict=True):
            for i in range(lag, len(ts)):
                dt = ts[i] - ts[i - lag]
                errs.append((ys[i] - ys[i - lag] - slope * dt, dt, ws[i]))
        if not errs:
            continue
        # Clip glitches, keep genuine spikes: they are part of how consumption wanders.
        clip = SCATTER_CLIP * max(_mad_sigma([e for e, _, _ in errs]), 1e-12)
        wsum = sum(w for _, _, w in errs)
        mean_sq = sum(w * min(abs(e), clip) ** 2 for e, _, w in errs) / wsum
        found[lag] = (mean_sq, sum(w * dt for _, dt, w in errs) / wsum)
    short_sq, short_dt = found[1]
    if LONG_LAG in found and found[LONG_LAG][1] > short_dt * 1.5:
        long_sq, long_dt = found[LONG_LAG]
        wander = max((long_sq - short_sq) / (long_dt - short_dt), 0.0)
        return wander, max(short_sq - wander * short_dt, 0.0) / 2.0
    # Too short to tell apart: call it all wander, which is the cautious reading.
    return short_sq / max(short_dt, 1e-3), 0.0


def _recent_rate(ts: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares rate over the newest RECENT_DAYS, less RECENT_STDERRS standard errors."""
    pts = [(t, y) for t, y in zip(ts, ys, strict=True) if t >= -RECENT_DAYS]
    if len(pts) < 3 or pts[-1][0] - pts[0][0] < MIN_RECENT_SPAN_DAYS:
        return None
    n = len(pts)
    tbar = sum(t for t, _ in pts) / n
    ybar = sum(y for _, y in pts) / n
    sxx = sum((t - tbar) ** 2 for t, _ in pts)
    slope = sum((t - tbar) * (y - ybar) for t, y in pts) / sxx
    rss = sum((y - ybar - slope * (t - tbar)) ** 2 for t, y in pts)
    stderr = math.sqrt(rss / max(n - 2, 1) / sxx)
    return -slope - RECENT_STDERRS * stderr


def _segment_means(
    ts: list[float],
    ys: list[float],
    ws: list[float],
    hs: list[float],
    group: list[int],
    groups: int,
) -> tuple[list[float], list[float]]:
    """Weighted means of times and of levels within each segment, in one pass."""
    tsum = [0.0] * groups
    ysum = [0.0] * groups
    weight = [0.0] * groups
    for t, y, w, h, k in zip(ts, ys, ws, hs, group, strict=True):
        wh = w * h
        tsum[k] += wh * t
        ysum[k] += wh * y
        weight[k] += wh
    tbar = [a / wt if wt > 0.0 else 0.0 for a, wt in zip(tsum, weight, strict=True)]
    ybar = [a / wt if wt > 0.0 else 0.0 for a, wt in zip(ysum, weight, strict=True)]
    return tbar, ybar


def _fit_shared_slope(
    ts: list[float],
    ys: list[float],
    ws: list[float],
    hs: list[float],
    group: list[int],
    groups: int,
) -> tuple[float, list[float], float]:
    """Weighted least squares: one slope, one intercept per segment. (slope, residuals, Sxx)."""
    tbar, ybar = _segment_means(ts, ys, ws, hs, group, groups)
    sxy = sxx = 0.0
    for t, y, w, h, k in zip(ts, ys, ws, hs, group, strict=True):
        dt = t - tbar[k]
        sxy += w * h * dt * (y - ybar[k])
        sxx += w * h * dt * dt
    slope = sxy / sxx if sxx > 0.0 else 0.0
    residuals = [y - ybar[k] - slope * (t - tbar[k]) for t, y, k in zip(ts, ys, group, strict=True)]
    return slope, residuals, sxx


def _residuals(
    slope: float,
    ts: list[float],
    ys: list[float],
    ws: list[float],
    hs: list[float],
    group: list[int],
    groups: int,
) -> list[float]:
    """Residuals about a given slope, each segment keeping its own weighted intercept."""
    tbar, ybar = _segment_means(ts, ys, ws, hs, group, groups)
    return [y - ybar[k] - slope * (t - tbar[k]) for t, y, k in zip(ts, ys, group, strict=True)]


def _gap_distribution(gaps: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """How long until the next report, as (days, probability) rounded up to GAP_STEP_DAYS.

    The gaps seen, plus PRIOR_SILENCES of a silence SILENCE_STRETCH times the longest one.
    """
    counts: dict[float, float] = {}
    for gap in gaps:
        # Readings a moment apart (re-sent, split records) are one look at the slot, not two.
        if gap >= MIN_PAIR_DAYS:
            key = math.ceil(gap / GAP_STEP_DAYS) * GAP_STEP_DAYS
            counts[key] = counts.get(key, 0.0) + 1.0
    if not counts:
        return ((1.0, 1.0),)
    silence = SILENCE_STRETCH * max(counts)
    counts[silence] = counts.get(silence, 0.0) + PRIOR_SILENCES
    total = sum(counts.values())
    return tuple((gap, n / total) for gap, n in sorted(counts.items()))


def _jumps(
    seg_t: list[list[float]],
    seg_y: list[list[float]],
    rate: float,
    wander: float,
    noise_var: float,
    lookback_days: float,
) -> tuple[float, float]:
    """Jumps in use the wander does not explain: (chance per day, mean extra in days of use)."""
    days = 0.0
    extras: list[float] = []
    for ts, ys in zip(seg_t, seg_y, strict=True):
        for i in range(1, len(ts)):
            dt = ts[i] - ts[i - 1]
            if dt < MIN_PAIR_DAYS:
                continue
            days += dt
            excess = (ys[i - 1] - ys[i]) - rate * dt
            if excess > JUMP_SIGMAS * math.sqrt(wander * dt + 2.0 * noise_var):
                extras.append(excess)
    if rate <= 0.0:
        return 0.0, 0.0
    chance = (len(extras) + PRIOR_JUMPS) / (days + lookback_days)
    # Unseen jumps are taken as large as the smallest one that would have been noticed.
    seen = sum(extras) / len(extras) if extras else JUMP_SIGMAS * math.sqrt(wander + 2 * noise_var)
    return min(chance, 1.0), seen / rate


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
    pairs = 0
    span = 0.0
    for ts, ys, ws in zip(seg_t, seg_y, seg_w, strict=True):
        span += ts[-1] - ts[0]
        pairs += len(ts) - 1
        for i in range(1, len(ts)):
            dt = ts[i] - ts[i - 1]
            if dt >= MIN_PAIR_DAYS:
                pair_slopes.append(((ys[i] - ys[i - 1]) / dt, ws[i] * dt))
    if pairs < MIN_PAIRS or span < MIN_SPAN_DAYS or not pair_slopes:
        return None
    slope = _weighted_median(pair_slopes)

    # Flat arrays (segment index per point) keep the robust loop cheap.
    ts = [t for seg in seg_t for t in seg]
    ys = [y for seg in seg_y for y in seg]
    ws = [w for seg in seg_w for w in seg]
    group = [k for k, seg in enumerate(seg_t) for _ in seg]
    robust = [1.0] * len(ts)
    residuals = _residuals(slope, ts, ys, ws, robust, group, len(segments))
    sxx = 0.0
    for _ in range(ROBUST_ITERATIONS):
        # A floor keeps weights finite when most residuals are exactly zero (flat, quantised data).
        cut = HUBER_K * max(_mad_sigma(residuals), SIGMA_FLOOR * scale)
        robust = [1.0 if abs(r) <= cut else cut / abs(r) for r in residuals]
        slope, residuals, sxx = _fit_shared_slope(ts, ys, ws, robust, group, len(segments))
    if sxx <= 0.0:
        return None

    # Sandwich (heteroscedasticity-robust) standard error of the shared slope.
    n = len(ts)
    tbar, _ = _segment_means(ts, ys, ws, robust, group, len(segments))
    meat = sum(
        (w * h * (t - tbar[k]) * r) ** 2
        for t, w, h, k, r in zip(ts, ws, robust, group, residuals, strict=True)
    )
    stderr = math.sqrt(meat) / sxx * math.sqrt(n / max(n - 1 - len(segments), 1))

    recent = _recent_rate(seg_t[-1], seg_y[-1])
    wander, noise_var = _split_scatter(seg_t, seg_y, seg_w, slope)
    # Day-to-day use never is perfectly regular, even when the sensor makes it look so.
    wander = max(wander, (MIN_WANDER_CV * slope) ** 2)

    # Level: the newest few points of the current segment, carried forward to now (median,
    # so one glitching reading cannot trigger or suppress an order on its own).
    recent_pts = [
        (t, y)
        for t, y in zip(seg_t[-1][-LEVEL_POINTS:], seg_y[-1][-LEVEL_POINTS:], strict=True)
        if t >= -LEVEL_WINDOW_DAYS
    ]
    cur_t, cur_y = [t for t, _ in recent_pts], [y for _, y in recent_pts]
    level_then = median(y - slope * t for t, y in zip(cur_t, cur_y, strict=True))
    ahead = max((now - last_at).total_seconds() / SECONDS_PER_DAY, 0.0)
    rate = -slope
    level_now = max(level_then - max(rate, 0.0) * ahead, 0.0)
    level_sd = math.sqrt(noise_var / len(cur_t))

    jump_rate, jump_extra = _jumps(seg_t, seg_y, rate, wander, noise_var, lookback_days)
    times = [r.at for r in seen]
    report_gaps = _gap_distribution(
        [(b - a).total_seconds() / SECONDS_PER_DAY for a, b in zip(times, times[1:], strict=False)]
    )
    return ConsumptionEstimate(
        rate_per_day=rate,
        rate_stderr=stderr,
        daily_sd=math.sqrt(wander),
        noise_sd=math.sqrt(noise_var),
        level=level_now,
        level_sd=level_sd,
        as_of=last_at,
        report_gaps=report_gaps,
        recent_rate=recent,
        readings_used=n,
        segments=len(segments),
        jump_rate_per_day=jump_rate,
        jump_extra_days=jump_extra,
    )
