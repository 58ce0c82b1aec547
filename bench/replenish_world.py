"""A seeded world of households for the replenishment simulation: demand, sensors, deliveries."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (product, unit, container capacity, units per pack, sensor resolution)
PRODUCTS: tuple[tuple[str, str, float, float, float], ...] = (
    ("coffee pods", "count", 50.0, 10.0, 1.0),
    ("detergent", "l", 4.0, 1.0, 0.05),
    ("dishwasher tabs", "count", 120.0, 30.0, 1.0),
    ("pet food", "kg", 12.0, 3.0, 0.1),
    ("rice", "kg", 10.0, 2.0, 0.1),
)
CONTAINER_SIZES = (1.0, 1.5, 2.0)  # the same product in bigger or smaller containers
RATE_RANGE = (0.005, 0.05)  # share of capacity used per day: a 10x range, log-uniform
SPIKE_PROBABILITY = 0.02  # guests, a big wash: a day using 2-4x the usual
HOLIDAYS_PER_YEAR = 1.5  # away from home: consumption almost stops for 4-14 days
MISS_RANGE = (0.03, 0.20)  # share of daily reports that never arrive
OUTAGE_PROBABILITY = 0.004  # per day: the device goes offline for 2-8 days
DUPLICATE_PROBABILITY = 0.03  # a report sent twice
CLOCK_JUMP_PROBABILITY = 0.003  # a report stamped a year in the future
LEAD_JITTER = ((-1, 0.2), (0, 0.4), (1, 0.3), (2, 0.1))  # days around the store's promise
DELAY_PROBABILITY = 0.06  # a parcel held up 2-6 extra days
STORE_HISTORY_DAYS = 30  # the store shipped to other households before the year began
STORE_DEVICES = 30  # other devices of the store whose report gaps the store has seen, a year each


@dataclass(frozen=True)
class World:
    """The rates of the world's surprises; the policy is never told them."""

    delay_rate: float = DELAY_PROBABILITY
    spike_rate: float = SPIKE_PROBABILITY
    outage_rate: float = OUTAGE_PROBABILITY

    def __post_init__(self) -> None:
        for rate in (self.delay_rate, self.spike_rate, self.outage_rate):
            if not 0.0 <= rate <= 1.0:
                raise ValueError("rates must lie between 0 and 1")


@dataclass(frozen=True)
class Household:
    """One household's slot and everything random about it, drawn before any policy runs."""

    product: str
    unit: str
    capacity: float
    units_per_pack: float
    resolution: float
    start_level: float
    promised_lead_days: float
    rate: float  # mean units per day, for plots and sorting
    demand: np.ndarray  # units wanted on each day
    report_at: np.ndarray  # fraction of each day at which the sensor reports
    reported: np.ndarray  # whether that day's report reaches the hub
    noise: np.ndarray  # sensor error of that day's report, in units
    duplicate: np.ndarray  # the report arrives twice
    clock_jump: np.ndarray  # the report carries a timestamp far in the future
    lead_days: np.ndarray  # delivery lead time (whole days) of an order placed that day
    # Lead times of the store's orders to other households, one placed each day from
    # STORE_HISTORY_DAYS before the first day: what the store has observed of its carrier.
    store_lead_days: np.ndarray

    # How long the store's other devices waited between reports: (days, probability).
    store_report_gaps: tuple[tuple[float, float], ...] = ()

    def store_lead_times(self, day: int, newest: int) -> tuple[float, ...]:
        """The store's `newest` placed->delivered durations delivered before `day`, oldest first."""
        placed = np.arange(len(self.store_lead_days)) - STORE_HISTORY_DAYS
        upto = min(day + STORE_HISTORY_DAYS, len(placed))
        done = placed[:upto] + self.store_lead_days[:upto] <= day
        # Placed at some time of day, delivered at the start of one: half a day less on average.
        return tuple(float(x) - 0.5 for x in self.store_lead_days[:upto][done][-newest:])


def _weekly_rhythm(rng: np.random.Generator) -> np.ndarray:
    """Per-weekday multipliers with mean one: some homes use more at weekends, some less."""
    rhythm = np.ones(7)
    rhythm[5:] += rng.uniform(-0.6, 0.6)
    rhythm = np.roll(rhythm, int(rng.integers(7)))
    return rhythm / rhythm.mean()


def _holidays(rng: np.random.Generator, days: int) -> np.ndarray:
    """Multipliers that nearly stop consumption while the household is away."""
    factor = np.ones(days)
    for _ in range(int(rng.poisson(HOLIDAYS_PER_YEAR * days / 365.0))):
        start = int(rng.integers(days))
        factor[start : start + int(rng.integers(4, 15))] = 0.05
    return factor


def _outages(rng: np.random.Generator, days: int, rate: float) -> np.ndarray:
    """True on days the device is offline."""
    off = np.zeros(days, dtype=bool)
    # Lengths drawn for every day, used or not, so the rate changes no other draw.
    lengths = rng.integers(2, 9, days)
    for start in np.flatnonzero(rng.random(days) < rate):
        off[start : start + int(lengths[start])] = True
    return off


def _store_report_gaps(
    rng: np.random.Generator, days: int, outage_rate: float
) -> tuple[tuple[float, float], ...]:
    """Gaps between the reports of the store's other devices, in whole days, as frequencies."""
    counts: dict[float, int] = {}
    for _ in range(STORE_DEVICES):
        miss = rng.uniform(*MISS_RANGE)
        reported = (rng.random(days) >= miss) & ~_outages(rng, days, outage_rate)
        for gap in np.diff(np.flatnonzero(reported)):
            counts[float(gap)] = counts.get(float(gap), 0) + 1
    total = sum(counts.values())
    return tuple((gap, n / total) for gap, n in sorted(counts.items()))


def _lead_days(rng: np.random.Generator, promised: int, days: int, delay_rate: float) -> np.ndarray:
    """Whole-day lead times around the promise, some parcels held up for days."""
    offsets, weights = zip(*LEAD_JITTER, strict=True)
    jitter = rng.choice(np.array(offsets), size=days, p=np.array(weights))
    delay = np.where(rng.random(days) < delay_rate, rng.integers(2, 7, days), 0)
    lead: np.ndarray = (np.clip(promised + jitter, 1, 5) + delay).astype(int)
    return lead


def make_household(seed: int, index: int, days: int, world: World = World()) -> Household:
    """Draw one household; the same (seed, index, days, world) always gives the same household.

    The rates only change thresholds on uniform draws, so a busier world keeps every surprise of
    the default one and adds more.
    """
    rng = np.random.default_rng([seed, index])
    product, unit, base_capacity, pack, resolution = PRODUCTS[int(rng.integers(len(PRODUCTS)))]
    capacity = base_capacity * float(rng.choice(CONTAINER_SIZES))
    low, high = RATE_RANGE
    rate = capacity * float(np.exp(rng.uniform(np.log(low), np.log(high))))

    day_of_week = np.arange(days) % 7
    daily = rng.gamma(3.0, 1.0 / 3.0, days)  # day-to-day variation, coefficient of variation 0.58
    spikes = np.where(rng.random(days) < world.spike_rate, rng.uniform(2.0, 4.0, days), 1.0)
    demand = rate * _weekly_rhythm(rng)[day_of_week] * daily * spikes * _holidays(rng, days)

    base_hour = rng.uniform(0.25, 0.9)
    report_at = np.clip(base_hour + rng.normal(0.0, 0.04, days), 0.01, 0.99)
    miss = rng.uniform(*MISS_RANGE)
    reported = (rng.random(days) >= miss) & ~_outages(rng, days, world.outage_rate)
    noise = rng.normal(0.0, rng.uniform(0.005, 0.03) * capacity, days)

    promised = int(rng.integers(1, 4))
    lead_days = _lead_days(rng, promised, days, world.delay_rate)

    return Household(
        product=product,
        unit=unit,
        capacity=capacity,
        units_per_pack=pack,
        resolution=resolution,
        start_level=capacity * float(rng.uniform(0.15, 1.0)),
        promised_lead_days=float(promised),
        rate=rate,
        demand=demand,
        report_at=report_at,
        reported=reported,
        noise=noise,
        duplicate=rng.random(days) < DUPLICATE_PROBABILITY,
        clock_jump=rng.random(days) < CLOCK_JUMP_PROBABILITY,
        lead_days=lead_days,
        # Drawn last, from its own stream, so the households' other draws stay as they were.
        store_lead_days=_lead_days(
            np.random.default_rng([seed, index, 1]),
            promised,
            days + STORE_HISTORY_DAYS,
            world.delay_rate,
        ),
        store_report_gaps=_store_report_gaps(
            np.random.default_rng([seed, index, 2]), 365, world.outage_rate
        ),
    )
