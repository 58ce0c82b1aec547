"""Simulate households to compare the predictive replenishment policy with fixed reorder points.

python -m bench.replenish_sim --households N --days D (--seed S | --seeds S,S,...) [--json]
    [--plot FILE] [--grid-step F] [--risk R] [--cover-days C | --up-to-full]
    [--late-reorder-days N] [--delay-rate P] [--spike-rate P] [--outage-rate P] [--jobs J]

Every policy runs on the same seeded households (bench.replenish_world draws all demand, sensor
and delivery randomness up front). Each day: a delivery due that day is added (capped at the
container), the sensor reports (noisy, sometimes missing, duplicated or stamped in the future),
the policy - the real object from orders.domain.replenishment - decides from the readings it has
seen, as the hub would, and the household consumes. A placed order arrives after the lead time drawn
for that day and stays open until then. Reported per policy: stock-out days (days demand was
not met), orders placed, and mean stock on hand as a share of capacity; the table adds what
overflowed the container (waste) and why predictive still ran out.

The fixed reorder points run on a fine grid (bench.replenish_frontier); `frontier` in the report
is that curve read at predictive's order count, and `ratio` its stock-out days over
predictive's. With several seeds the report is the pooled one, each seed's beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.replenish_frontier import GRID_STEP, GridTotals, frontier_at, grid_shares, run_grid
from bench.replenish_world import Household, World, make_household
from orders.domain.replenishment import (
    MAX_OBSERVED_LEAD_TIMES,
    Policy,
    PredictivePolicy,
    Reading,
    SlotState,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
# The target: at predictive's order count the threshold curve has this many times
# predictive's stock-out days, pooled over seeds and for each seed alone, holding no less stock.
TARGET_POOLED, TARGET_EACH, TARGET_STOCK_TOLERANCE = 4.0, 2.5, 0.005
READINGS_WINDOW = 90  # newest readings handed to a policy, as the hub's query would
PLOT_HOUSEHOLDS = 4
PLOT_RISKS = (0.002, 0.005, 0.01, 0.03, 0.1)  # predictive's points on the frontier plot
FUTURE_JUMP = timedelta(days=400)
CHUNK = 10  # households per task when --jobs runs several processes


# The link settings a new appliance link gets (orders/store/model.py): what the simulated
# shoppers kept. A year's cover fills the container at each delivery for all but the slowest.
PREDICTIVE_RISK = 0.003
PREDICTIVE_COVER_DAYS = 365.0
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
    late_reorder_days: float | None = None  # opt-in: order again once a parcel is this late

    def policy(self, hh: Household) -> Policy:
        """The predictive policy for one household's link."""
        return PredictivePolicy(
            risk=self.risk,
            cover_days=self.cover_days,
            max_level=hh.capacity if self.up_to_full else None,
            late_reorder_days=self.late_reorder_days,
        )


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
    # Parcels on their way: (day, units, placed->delivered days); two only after a late reorder.
    arrivals: list[tuple[int, float, float]] = []
    open_since: int | None = None
    last_report: int | None = None
    delivered = False
    for day in range(days):
        for arrival in [a for a in arrivals if a[0] == day]:
            trace.delivered_share += arrival[1] / hh.capacity
            trace.overflow_share += max(level + arrival[1] - hh.capacity, 0.0) / hh.capacity
            level = min(hh.capacity, level + arrival[1])
            arrivals.remove(arrival)
            delivered = True
            if record:
                trace.arrival_days.append(day)
        if not arrivals:
            open_since = None
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
            promised = (
                START + timedelta(days=open_since + hh.promised_lead_days)
                if open_since is not None
                else None
            )
            state = SlotState(
                capacity=hh.capacity,
                units_per_pack=hh.units_per_pack,
                readings=readings[-READINGS_WINDOW:],
                now=now,
                lead_time_days=hh.promised_lead_days,
                observed_lead_times_days=hh.store_lead_times(day, MAX_OBSERVED_LEAD_TIMES),
                order_open=bool(arrivals),
                open_order_arrives_at=promised,
                open_order_replaced=len(arrivals) > 1,
                store_report_gaps=hh.store_report_gaps,
            )
            decision = policy.decide(state)
            if decision.order and len(arrivals) < (2 if decision.reason == "late_reorder" else 1):
                lead = int(hh.lead_days[day])
                arrivals.append((day + lead, decision.packs * hh.units_per_pack, lead - frac))
                open_since = day if open_since is None else open_since
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

    def merge(self, other: Totals) -> None:
        """Fold another group of households in."""
        self.stockout_days += other.stockout_days
        self.orders += other.orders
        self.on_hand_share += other.on_hand_share
        self.household_days += other.household_days
        self.delivered_share += other.delivered_share
        self.overflow_share += other.overflow_share
        for cause, count in other.causes.items():
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


@dataclass(frozen=True)
class Setup:
    """Everything a run needs besides the households: the world, the links and the grid."""

    days: int
    world: World = World()
    settings: LinkSettings = LinkSettings()
    shares: tuple[float, ...] = grid_shares()
    # Extra predictive variants run on the same households: name -> settings.
    variants: tuple[tuple[str, LinkSettings], ...] = ()


@dataclass
class Part:
    """Results of some households of one seed."""

    predictive: dict[str, Totals]
    grid: GridTotals


def run_part(setup: Setup, seed: int, indices: Sequence[int]) -> Part:
    """Every policy on the households `indices` of one seed."""
    named = (("predictive", setup.settings), *setup.variants)
    part = Part({name: Totals() for name, _ in named}, GridTotals.empty(len(setup.shares)))
    for index in indices:
        hh = make_household(seed, index, setup.days, setup.world)
        for name, settings in named:
            part.predictive[name].add(run_household(hh, settings.policy(hh)), setup.days)
        part.grid.add(run_grid(hh, setup.shares))
    return part


def _run_part(job: tuple[Setup, int, Sequence[int]]) -> tuple[int, Part]:
    setup, seed, indices = job
    return seed, run_part(setup, seed, indices)


@dataclass
class Run:
    """A simulation's JSON report and the per-policy totals behind it."""

    report: dict[str, Any]
    totals: dict[str, Totals]
    grid: GridTotals
    shares: tuple[float, ...]
    per_seed: dict[int, dict[str, Any]] = field(default_factory=dict)


def build_report(
    predictive: dict[str, Totals], grid: GridTotals, shares: Sequence[float]
) -> dict[str, Any]:
    """The JSON report: predictive, the threshold grid, the frontier, and any variants."""
    rows = grid.rows(shares)
    report: dict[str, Any] = {
        "predictive": predictive["predictive"].summary(),
        "threshold_grid": rows,
    }
    report["frontier"] = frontier_at(rows, report["predictive"])
    for name, totals in predictive.items():
        if name != "predictive":
            summary = totals.summary()
            report[name] = {**summary, "frontier": frontier_at(rows, summary)}
    return report


def simulate(
    households: int,
    days: int,
    seeds: int | Sequence[int],
    progress: bool = True,
    settings: LinkSettings = LinkSettings(),
    *,
    world: World | None = None,
    shares: Sequence[float] = grid_shares(),
    variants: Sequence[tuple[str, LinkSettings]] = (),
    jobs: int = 1,
) -> Run:
    """Run every policy on the same seeded households; several seeds are pooled."""
    seed_list = [seeds] if isinstance(seeds, int) else list(seeds)
    setup = Setup(days, world or World(), settings, tuple(shares), tuple(variants))
    tasks = [
        (setup, seed, range(start, min(start + CHUNK, households)))
        for seed in seed_list
        for start in range(0, households, CHUNK)
    ]
    names = ("predictive", *(name for name, _ in variants))
    by_seed = {
        seed: Part({name: Totals() for name in names}, GridTotals.empty(len(shares)))
        for seed in seed_list
    }
    bar = tqdm(total=households * len(seed_list), desc="households", unit="hh",
               file=sys.stderr, disable=not progress)  # fmt: skip
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = pool.map(_run_part, tasks)
            _collect(results, tasks, by_seed, bar)
    else:
        _collect(map(_run_part, tasks), tasks, by_seed, bar)
    bar.close()
    pooled = Part({name: Totals() for name in names}, GridTotals.empty(len(shares)))
    per_seed = {}
    for seed, part in by_seed.items():
        for name in names:
            pooled.predictive[name].merge(part.predictive[name])
        pooled.grid.add(part.grid)
        per_seed[seed] = build_report(part.predictive, part.grid, shares)
    report = build_report(pooled.predictive, pooled.grid, shares)
    if len(seed_list) > 1:
        report["seeds"] = {str(seed): r for seed, r in per_seed.items()}
    return Run(report, pooled.predictive, pooled.grid, tuple(shares), per_seed)


def _collect(results: Any, tasks: Sequence[Any], by_seed: dict[int, Part], bar: Any) -> None:
    for (seed, part), task in zip(results, tasks, strict=True):
        into = by_seed[seed]
        for name, totals in part.predictive.items():
            into.predictive[name].merge(totals)
        into.grid.add(part.grid)
        bar.update(len(task[2]))


def verdict(run: Run) -> dict[str, Any]:
    """The issue's target on this run: pooled and per-seed ratios at equal orders and stock."""
    pooled = run.report["frontier"]
    pred_stock = run.report["predictive"]["mean_on_hand"]

    def holds(frontier: dict[str, Any], stock: float, floor: float) -> bool:
        ratio, threshold_stock = frontier["ratio"], frontier["threshold_mean_on_hand"]
        if threshold_stock is None:
            return False
        stock_ok = stock <= threshold_stock + TARGET_STOCK_TOLERANCE
        if ratio is None:  # predictive never ran out: met if the curve did
            return bool(frontier["threshold_stockout_days"]) and stock_ok
        return bool(ratio >= floor and stock_ok)

    each = {
        seed: holds(r["frontier"], r["predictive"]["mean_on_hand"], TARGET_EACH)
        for seed, r in run.per_seed.items()
    }
    return {
        "pooled": holds(pooled, pred_stock, TARGET_POOLED),
        "each": each,
        "met": holds(pooled, pred_stock, TARGET_POOLED) and all(each.values()),
    }


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a rate lies between 0 and 1")
    return value


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as bad:
        raise argparse.ArgumentTypeError("seeds are integers separated by commas") from bad
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError("name at least one seed, each once")
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.replenish_sim", description=__doc__)
    parser.add_argument("--households", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, default=None, help="one seed (default 1)")
    which.add_argument("--seeds", type=_seeds, help="several seeds, pooled: 101,102,103")
    parser.add_argument("--json", action="store_true", help="last stdout line is the JSON report")
    parser.add_argument(
        "--plot", metavar="FILE",
        help="write a PNG of a few households, and the frontier beside it (FILE-frontier.png)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--grid-step", type=float, default=GRID_STEP,
                        help="spacing of the fixed reorder points, share of capacity")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
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
    parser.add_argument(
        "--late-reorder-days", type=float, default=None,
        help="also run the opt-in variant beside the default: order again this many days late",
    )  # fmt: skip
    defaults = World()
    parser.add_argument("--delay-rate", type=_rate, default=defaults.delay_rate,
                        help="share of parcels held up 2-6 days")  # fmt: skip
    parser.add_argument("--spike-rate", type=_rate, default=defaults.spike_rate,
                        help="chance per day of using 2-4x the usual")  # fmt: skip
    parser.add_argument("--outage-rate", type=_rate, default=defaults.outage_rate,
                        help="chance per day a device goes offline for 2-8 days")  # fmt: skip
    args = parser.parse_args(argv)
    if args.households < 1 or args.days < 1 or args.jobs < 1:
        parser.error("--households, --days and --jobs must be positive")
    if not 0.0 < args.risk < 1.0 or not args.cover_days > 0.0:
        parser.error("--risk must lie between 0 and 1 and --cover-days be positive")
    if not 0.001 <= args.grid_step <= 0.55:
        parser.error("--grid-step must lie between 0.001 and 0.55")
    if args.late_reorder_days is not None and not args.late_reorder_days >= 0.0:
        parser.error("--late-reorder-days must not be negative")
    settings = LinkSettings(args.risk, args.cover_days, args.up_to_full)
    world = World(args.delay_rate, args.spike_rate, args.outage_rate)
    seeds = args.seeds or [1 if args.seed is None else args.seed]
    variants = []
    if args.late_reorder_days is not None:
        late = replace(settings, late_reorder_days=args.late_reorder_days)
        variants.append(("predictive_late_reorder", late))
    if args.plot:
        variants += [(f"risk_{risk:g}", replace(settings, risk=risk)) for risk in PLOT_RISKS]

    started = time.perf_counter()
    run = simulate(
        args.households, args.days, seeds, not args.no_progress, settings,
        world=world, shares=grid_shares(args.grid_step), variants=variants, jobs=args.jobs,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    from bench import replenish_report as show

    if args.plot:
        for risk in PLOT_RISKS:
            run.report.pop(f"risk_{risk:g}", None)
        risk_points = [(risk, run.totals.pop(f"risk_{risk:g}").summary()) for risk in PLOT_RISKS]
        kept, best = show.kept_traces(args.households, args.days, seeds[0], run, settings, world)
        show.plot_households(kept, best, args.plot)
        show.plot_frontier(run, risk_points, frontier_path(args.plot))
    if args.json:
        print(json.dumps(run.report))
    else:
        show.print_table(run, args.households, args.days, seconds)
    return 0


def frontier_path(plot: str) -> str:
    """Where --plot FILE puts the frontier: beside FILE, with -frontier before the suffix."""
    path = Path(plot)
    return str(path.with_name(f"{path.stem}-frontier{path.suffix or '.png'}"))


if __name__ == "__main__":
    raise SystemExit(main())
