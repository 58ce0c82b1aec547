"""Simulate households to compare the predictive replenishment policy with fixed reorder points.

python -m bench.replenish_sim --households N --days D --seed S [--json] [--plot FILE]
    [--risk R] [--cover-days C | --up-to-full]

Every policy runs on the same seeded households (bench.replenish_world draws all demand, sensor
and delivery randomness up front). Each day: a delivery due that day is added (capped at the
container), the sensor reports (noisy, sometimes missing, duplicated or stamped in the future),
the policy - the real object from orders.domain.replenishment - decides from the readings it has
seen, as the hub would, and the household consumes. A placed order arrives after the lead time drawn
for that day and stays open until then. Reported per policy: stock-out days (days demand was
not met), orders placed, and mean stock on hand as a share of capacity; the table adds what
overflowed the container (waste) and why predictive still ran out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from bench.replenish_world import Household, make_household
from orders.domain.replenishment import (
    Policy,
    PredictivePolicy,
    Reading,
    SlotState,
    ThresholdPolicy,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)  # reorder points as shares of capacity
COMPARABLE_STOCK = 1.2  # a threshold is comparable if it holds at most this x predictive's stock
TARGET_REDUCTION = 0.8
READINGS_WINDOW = 90  # newest readings handed to a policy, as the hub's query would
PLOT_HOUSEHOLDS = 4
FUTURE_JUMP = timedelta(days=400)


# The link settings the simulated shoppers chose for the predictive policy (the same two fields
# a real link stores): a 1% chance of running out per decision, and deliveries meant to last at
# least 30 days (slow consumers buy for longer, see PredictivePolicy._cover).
PREDICTIVE_RISK = 0.01
PREDICTIVE_COVER_DAYS = 30.0
# A delivery later than the promise plus this many days was held up (the world's jitter is at
# most two days): that is how the stock-out breakdown tells a delayed parcel from a late order.
ON_TIME_SLACK_DAYS = 2
# This many days without a report before a stock-out: the device was silent, the policy blind.
SILENT_DAYS = 3


@dataclass(frozen=True)
class LinkSettings:
    """What the simulated shoppers set on their predictive links."""

    risk: float = PREDICTIVE_RISK
    cover_days: float = PREDICTIVE_COVER_DAYS
    up_to_full: bool = False  # order up to the container's capacity instead of a cover period

    def policy(self, hh: Household) -> Policy:
        """The predictive policy for one household's link."""
        return PredictivePolicy(
            risk=self.risk,
            cover_days=self.cover_days,
            max_level=hh.capacity if self.up_to_full else None,
        )


def threshold_for(share: float) -> Callable[[Household], Policy]:
    """A fixed reorder point at `share` of capacity, ordering up to full."""

    def make(hh: Household) -> Policy:
        return ThresholdPolicy(reorder_point=share * hh.capacity)

    return make


@dataclass
class Trace:
    """One household's run under one policy; daily levels only when asked for."""

    stockout_days: int = 0
    orders: int = 0
    on_hand_share: float = 0.0  # sum over days of end-of-day level / capacity
    delivered_share: float = 0.0  # units delivered / capacity
    overflow_share: float = 0.0  # units that did not fit the container / capacity
    causes: dict[str, int] = field(default_factory=dict)  # stock-out days by likely cause
    levels: list[float] = field(default_factory=list)
    order_days: list[float] = field(default_factory=list)
    arrival_days: list[int] = field(default_factory=list)
    stockouts: list[int] = field(default_factory=list)


def stockout_cause(
    hh: Household, day: int, delivered: bool, open_since: int | None, last_report: int | None
) -> str:
    """Why a slot ran out on `day`, as far as the run can tell."""
    if not delivered:
        return "before the first delivery"
    if open_since is not None:
        on_time = min(hh.promised_lead_days + ON_TIME_SLACK_DAYS, 5)
        if hh.lead_days[open_since] > on_time:
            return "parcel held up"
        return "ordered too late"
    if last_report is None or day - last_report >= SILENT_DAYS:
        return "sensor silent, no order"
    return "not ordered"


def run_household(hh: Household, policy: Policy, record: bool = False) -> Trace:
    """Play one household's year under one policy, feeding it only what its sensor reported."""
    trace = Trace()
    days = len(hh.demand)
    level = hh.start_level
    readings: list[Reading] = []
    observed: list[float] = []
    arrival: tuple[int, float, float] | None = None  # (day, units, placed->delivered days)
    open_since: int | None = None
    last_report: int | None = None
    delivered = False
    for day in range(days):
        if arrival is not None and arrival[0] == day:
            trace.delivered_share += arrival[1] / hh.capacity
            trace.overflow_share += max(level + arrival[1] - hh.capacity, 0.0) / hh.capacity
            level = min(hh.capacity, level + arrival[1])
            observed.append(arrival[2])
            arrival, open_since, delivered = None, None, True
            if record:
                trace.arrival_days.append(day)
        want = float(hh.demand[day])
        if want > level + 1e-9:
            trace.stockout_days += 1
            cause = stockout_cause(hh, day, delivered, open_since, last_report)
            trace.causes[cause] = trace.causes.get(cause, 0) + 1
            if record:
                trace.stockouts.append(day)
        frac = float(hh.report_at[day])
        if hh.reported[day]:
            last_report = day
            seen = max(level - want * frac, 0.0) + float(hh.noise[day])
            value = min(max(round(seen / hh.resolution) * hh.resolution, 0.0), hh.capacity)
            now = START + timedelta(days=day + frac)
            readings.append(Reading(now, value))
            if hh.duplicate[day]:
                readings.append(Reading(now, value))
            if hh.clock_jump[day]:
                readings.append(Reading(now + FUTURE_JUMP, value))
            state = SlotState(
                capacity=hh.capacity,
                units_per_pack=hh.units_per_pack,
                readings=readings[-READINGS_WINDOW:],
                now=now,
                lead_time_days=hh.promised_lead_days,
                observed_lead_times_days=tuple(observed),
                order_open=arrival is not None,
            )
            decision = policy.decide(state)
            if decision.order and arrival is None:
                lead = int(hh.lead_days[day])
                arrival = (day + lead, decision.packs * hh.units_per_pack, lead - frac)
                open_since = day
                trace.orders += 1
                if record:
                    trace.order_days.append(day + frac)
        level = max(level - want, 0.0)
        trace.on_hand_share += level / hh.capacity
        if record:
            trace.levels.append(level)
    return trace


@dataclass
class Totals:
    """A policy's results summed over households."""

    stockout_days: int = 0
    orders: int = 0
    on_hand_share: float = 0.0
    household_days: int = 0
    delivered_share: float = 0.0
    overflow_share: float = 0.0
    causes: dict[str, int] = field(default_factory=dict)

    def add(self, trace: Trace, days: int) -> None:
        """Fold one household's trace in."""
        self.stockout_days += trace.stockout_days
        self.orders += trace.orders
        self.on_hand_share += trace.on_hand_share
        self.household_days += days
        self.delivered_share += trace.delivered_share
        self.overflow_share += trace.overflow_share
        for cause, count in trace.causes.items():
            self.causes[cause] = self.causes.get(cause, 0) + count

    def waste(self) -> float:
        """Share of the delivered units that did not fit the container."""
        return self.overflow_share / self.delivered_share if self.delivered_share else 0.0

    def summary(self) -> dict[str, Any]:
        """Stock-out days, orders and mean stock on hand (share of capacity)."""
        mean = self.on_hand_share / self.household_days if self.household_days else 0.0
        return {
            "stockout_days": self.stockout_days,
            "orders": self.orders,
            "mean_on_hand": round(mean, 4),
        }


@dataclass
class Run:
    """A simulation's JSON report, per-policy totals and the traces kept for plotting."""

    report: dict[str, Any]
    totals: dict[str, Totals]
    kept: dict[str, dict[int, tuple[Household, Trace]]]


def simulate(
    households: int,
    days: int,
    seed: int,
    progress: bool = True,
    keep: Sequence[int] = (),
    settings: LinkSettings = LinkSettings(),
) -> Run:
    """Run every policy on the same seeded households."""
    makers: dict[str, Callable[[Household], Policy]] = {"predictive": settings.policy}
    makers.update({f"{share:.1f}": threshold_for(share) for share in THRESHOLDS})
    totals = {name: Totals() for name in makers}
    kept: dict[str, dict[int, tuple[Household, Trace]]] = {name: {} for name in makers}
    for index in tqdm(range(households), desc="households", file=sys.stderr, disable=not progress):
        hh = make_household(seed, index, days)
        for name, make in makers.items():
            trace = run_household(hh, make(hh), record=index in keep)
            totals[name].add(trace, days)
            if index in keep:
                kept[name][index] = (hh, trace)
    report = {
        "predictive": totals["predictive"].summary(),
        "threshold_grid": [
            {"reorder_point": share, **totals[f"{share:.1f}"].summary()} for share in THRESHOLDS
        ],
    }
    return Run(report, totals, kept)


def best_comparable(report: dict[str, Any]) -> dict[str, Any] | None:
    """The fixed point with fewest stock-outs among those holding <= 1.2x predictive's stock."""
    limit = COMPARABLE_STOCK * report["predictive"]["mean_on_hand"]
    grid = [row for row in report["threshold_grid"] if row["mean_on_hand"] <= limit]
    if not grid:
        return None
    return min(grid, key=lambda row: (row["stockout_days"], row["orders"]))


def compare(report: dict[str, Any]) -> dict[str, Any]:
    """How predictive fares against the best comparable fixed point (issue 7's target)."""
    best = best_comparable(report)
    pred = report["predictive"]
    if best is None:
        return {"best": None, "reduction": None, "target_met": False}
    if best["stockout_days"] == 0:
        reduction = 1.0 if pred["stockout_days"] == 0 else float("-inf")
    else:
        reduction = 1.0 - pred["stockout_days"] / best["stockout_days"]
    met = reduction >= TARGET_REDUCTION and pred["orders"] <= best["orders"]
    return {"best": best, "reduction": reduction, "target_met": met}


def print_table(run: Run, households: int, days: int, seconds: float) -> None:
    """A readable table of every policy and the comparison, with rich."""
    from rich.console import Console
    from rich.table import Table

    report = run.report
    table = Table(title=f"Replenishment: {households} households x {days} days")
    for column in ("policy", "stock-out days", "orders", "mean on hand", "waste"):
        table.add_column(column, justify="right")
    rows = [("predictive", "predictive", report["predictive"])]
    rows += [
        (f"reorder at {r['reorder_point']:.0%}", f"{r['reorder_point']:.1f}", r)
        for r in report["threshold_grid"]
    ]
    for label, name, row in rows:
        table.add_row(
            label,
            str(row["stockout_days"]),
            str(row["orders"]),
            f"{row['mean_on_hand']:.1%}",
            f"{run.totals[name].waste():.1%}",
        )
    console = Console()
    console.print(table)
    causes = sorted(run.totals["predictive"].causes.items(), key=lambda item: -item[1])
    if causes:
        console.print(
            "Predictive's stock-out days by cause: "
            + ", ".join(f"{cause} {count}" for cause, count in causes)
        )
    result = compare(report)
    best = result["best"]
    if best is None:
        console.print("No fixed reorder point holds as little stock as predictive.")
    else:
        pred = report["predictive"]
        console.print(
            f"Best comparable fixed point (mean stock <= {COMPARABLE_STOCK}x predictive's): "
            f"reorder at {best['reorder_point']:.0%}: {best['stockout_days']} stock-out days, "
            f"{best['orders']} orders.\n"
            f"Predictive: {pred['stockout_days']} stock-out days "
            f"({result['reduction']:.1%} fewer), {pred['orders']} orders. "
            f"Target (>= {TARGET_REDUCTION:.0%} fewer, no more orders): "
            f"{'met' if result['target_met'] else 'NOT met'}."
        )
    console.print(f"Wall time: {seconds:.1f} s")


def plot_households(
    kept: dict[str, dict[int, tuple[Household, Trace]]], report: dict[str, Any], path: str
) -> None:
    """Write a PNG: a few households' levels, predictive beside the best threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = best_comparable(report) or min(
        report["threshold_grid"], key=lambda row: row["stockout_days"]
    )
    other = f"{best['reorder_point']:.1f}"
    indices = sorted(kept["predictive"])
    fig, axes = plt.subplots(
        len(indices), 2, figsize=(13, 2.6 * len(indices)), sharex=True, squeeze=False
    )
    for row, index in enumerate(indices):
        for col, (name, title) in enumerate(
            (("predictive", "predictive"), (other, f"reorder at {best['reorder_point']:.0%}"))
        ):
            hh, trace = kept[name][index]
            ax = axes[row][col]
            ax.plot(range(len(trace.levels)), trace.levels, lw=1, color="tab:blue")
            ax.axhline(0, color="grey", lw=0.5)
            for day in trace.order_days:
                ax.axvline(day, color="tab:orange", lw=0.8, ls="--")
            ax.plot(
                trace.arrival_days,
                [hh.capacity] * len(trace.arrival_days),
                "v",
                color="tab:green",
                ms=5,
            )
            ax.set_ylim(-0.05 * hh.capacity, 1.1 * hh.capacity)
            ax.set_title(
                f"#{index} {hh.product}, {hh.rate / hh.capacity:.1%}/day - {title}: "
                f"{trace.stockout_days} stock-out days, {trace.orders} orders",
                fontsize=8,
            )
            ax.set_ylabel(hh.unit)
    for ax in axes[-1]:
        ax.set_xlabel("day (dashed: order placed, triangle: delivery)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def households_to_plot(households: int, days: int, seed: int) -> list[int]:
    """A spread of consumption rates: the lightest, two in between and the heaviest user."""
    sample = range(min(households, 40))
    by_rate = sorted(sample, key=lambda i: (r := make_household(seed, i, days)).rate / r.capacity)
    if len(by_rate) <= PLOT_HOUSEHOLDS:
        return by_rate
    step = (len(by_rate) - 1) / (PLOT_HOUSEHOLDS - 1)
    return sorted({by_rate[round(k * step)] for k in range(PLOT_HOUSEHOLDS)})


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.replenish_sim", description=__doc__)
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="last stdout line is the JSON report")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG of a few households")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--risk", type=float, default=PREDICTIVE_RISK, help="predictive links' risk"
    )
    quantity = parser.add_mutually_exclusive_group()
    quantity.add_argument(
        "--cover-days", type=float, default=PREDICTIVE_COVER_DAYS, help="predictive links' cover"
    )
    quantity.add_argument(
        "--up-to-full", action="store_true", help="predictive links order up to capacity"
    )
    args = parser.parse_args(argv)
    if args.households < 1 or args.days < 1:
        parser.error("--households and --days must be positive")
    if not 0.0 < args.risk < 1.0 or not args.cover_days > 0.0:
        parser.error("--risk must lie between 0 and 1 and --cover-days be positive")
    settings = LinkSettings(args.risk, args.cover_days, args.up_to_full)

    keep = households_to_plot(args.households, args.days, args.seed) if args.plot else []
    started = time.perf_counter()
    run = simulate(args.households, args.days, args.seed, not args.no_progress, keep, settings)
    seconds = time.perf_counter() - started
    if args.plot:
        plot_households(run.kept, run.report, args.plot)
    if args.json:
        print(json.dumps(run.report))
    else:
        print_table(run, args.households, args.days, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
