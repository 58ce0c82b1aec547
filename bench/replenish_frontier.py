"""The fixed-threshold frontier: a fine grid of reorder points run at once, and its interpolation.

`run_grid` plays one household under every reorder point of the grid in one pass (arrays over
the grid), with exactly the rules of `ThresholdPolicy` as `bench.replenish_sim.run_household`
feeds it (a test holds the two equal). `frontier_at` reads the threshold curve at predictive's
order count: stock linearly, stock-out days on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.replenish_world import Household

GRID_LOW, GRID_HIGH, GRID_STEP = 0.05, 0.60, 0.025


def grid_shares(step: float = GRID_STEP) -> tuple[float, ...]:
    """Reorder points from 5% to 60% of capacity, `step` apart (rounded to tenths of a percent)."""
    count = int(math.floor((GRID_HIGH - GRID_LOW) / step + 1e-9)) + 1
    return tuple(round(GRID_LOW + k * step, 4) for k in range(count))


@dataclass
class GridTotals:
    """Per reorder point, summed over households: the fields `Totals.summary` reports."""

    stockout_days: np.ndarray
    orders: np.ndarray
    on_hand_share: np.ndarray
    delivered_share: np.ndarray
    overflow_share: np.ndarray
    household_days: int = 0

    @classmethod
    def empty(cls, size: int) -> GridTotals:
        """Zeros for `size` reorder points."""
        return cls(np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size), np.zeros(size))

    def add(self, other: GridTotals) -> None:
        """Fold another household's (or seed's) figures in."""
        self.stockout_days += other.stockout_days
        self.orders += other.orders
        self.on_hand_share += other.on_hand_share
        self.delivered_share += other.delivered_share
        self.overflow_share += other.overflow_share
        self.household_days += other.household_days

    def rows(self, shares: Sequence[float]) -> list[dict[str, Any]]:
        """One report row per reorder point."""
        days = max(self.household_days, 1)
        return [
            {
                "reorder_point": share,
                "stockout_days": int(self.stockout_days[k]),
                "orders": int(self.orders[k]),
                "mean_on_hand": round(float(self.on_hand_share[k]) / days, 4),
            }
            for k, share in enumerate(shares)
        ]

    def waste(self, k: int) -> float:
        """Share of the units delivered under reorder point k that did not fit."""
        delivered = float(self.delivered_share[k])
        return float(self.overflow_share[k]) / delivered if delivered else 0.0


def run_grid(hh: Household, shares: Sequence[float]) -> GridTotals:
    """One household's year under every reorder point at once (orders up to full, whole packs)."""
    points = np.asarray(shares) * hh.capacity
    size = len(points)
    level = np.full(size, hh.start_level)
    due = np.full(size, -1)  # arrival day of the open order, -1 when none is open
    units = np.zeros(size)
    out = GridTotals.empty(size)
    days = len(hh.demand)
    out.household_days = days
    cap, pack = hh.capacity, hh.units_per_pack
    for day in range(days):
        arriving = due == day
        if arriving.any():
            out.delivered_share += np.where(arriving, units, 0.0) / cap
            spill = np.maximum(level + units - cap, 0.0)
            out.overflow_share += np.where(arriving, spill, 0.0) / cap
            level = np.where(arriving, np.minimum(cap, level + units), level)
            due = np.where(arriving, -1, due)
        want = float(hh.demand[day])
        out.stockout_days += want > level + 1e-9
        if hh.reported[day]:
            seen = np.maximum(level - want * float(hh.report_at[day]), 0.0) + float(hh.noise[day])
            value = np.clip(np.round(seen / hh.resolution) * hh.resolution, 0.0, cap)
            order = (due < 0) & (value <= points)
            if order.any():
                room = cap - np.maximum(value, 0.0)
                wanted = np.ceil(room / pack - 1e-9)
                fits = np.floor(room / pack + 1e-9)
                packs = np.maximum(1.0, np.minimum(wanted, fits))
                units = np.where(order, packs * pack, units)
                due = np.where(order, day + int(hh.lead_days[day]), due)
                out.orders += order
        level = np.maximum(level - want, 0.0)
        out.on_hand_share += level / cap
    return out


def frontier_at(grid: Sequence[dict[str, Any]], predictive: dict[str, Any]) -> dict[str, Any]:
    """The threshold curve at predictive's order count, and its stock-out days over predictive's.

    Neighbouring grid points (in reorder-point order) that bracket the order count are
    interpolated: orders and stock linearly, stock-out days on a log scale (linearly when one
    of the two is zero). Outside the grid's range every figure is None.
    """
    target = float(predictive["orders"])
    rows = sorted(grid, key=lambda row: row["reorder_point"])
    found: dict[str, Any] = {
        "orders": predictive["orders"],
        "threshold_stockout_days": None,
        "threshold_mean_on_hand": None,
        "ratio": None,
    }
    for low, high in zip(rows, rows[1:], strict=False):
        o_low, o_high = float(low["orders"]), float(high["orders"])
        if not min(o_low, o_high) <= target <= max(o_low, o_high):
            continue
        t = 0.0 if o_high == o_low else (target - o_low) / (o_high - o_low)
        s_low, s_high = float(low["stockout_days"]), float(high["stockout_days"])
        if s_low > 0.0 and s_high > 0.0:
            stockouts = math.exp(math.log(s_low) + t * (math.log(s_high) - math.log(s_low)))
        else:
            stockouts = s_low + t * (s_high - s_low)
        stock = low["mean_on_hand"] + t * (high["mean_on_hand"] - low["mean_on_hand"])
        found["threshold_stockout_days"] = round(stockouts, 2)
        found["threshold_mean_on_hand"] = round(stock, 4)
        pred = predictive["stockout_days"]
        found["ratio"] = round(stockouts / pred, 3) if pred > 0 else None
        break
    return found
