"""What bench.replenish_sim shows: the table, the frontier plot and a few households' levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.replenish_sim import (
    PLOT_HOUSEHOLDS,
    PLOT_RISKS,
    TARGET_EACH,
    TARGET_POOLED,
    LinkSettings,
    Run,
    Trace,
    run_household,
    verdict,
)
from bench.replenish_world import Household, World, make_household
from orders.domain.replenishment import ThresholdPolicy

__all__ = ["PLOT_RISKS", "kept_traces", "plot_frontier", "plot_households", "print_table"]


def _ratio_text(frontier: dict[str, Any]) -> str:
    if frontier["threshold_stockout_days"] is None:
        return "outside the grid"
    ratio = frontier["ratio"]
    return "predictive never ran out" if ratio is None else f"{ratio:.2f}x"


def print_table(run: Run, households: int, days: int, seconds: float) -> None:
    """A readable table of every policy and the frontier comparison, with rich."""
    from rich.console import Console
    from rich.table import Table

    report = run.report
    seeds = ", ".join(str(seed) for seed in run.per_seed)
    table = Table(title=f"Replenishment: {households} households x {days} days, seeds {seeds}")
    for column in ("policy", "stock-out days", "orders", "mean on hand", "waste"):
        table.add_column(column, justify="right")
    for name, totals in run.totals.items():
        row = totals.summary()
        table.add_row(name, str(row["stockout_days"]), str(row["orders"]),
                      f"{row['mean_on_hand']:.1%}", f"{totals.waste():.1%}")  # fmt: skip
    for k, row in enumerate(report["threshold_grid"]):
        table.add_row(f"reorder at {row['reorder_point']:.1%}", str(row["stockout_days"]),
                      str(row["orders"]), f"{row['mean_on_hand']:.1%}",
                      f"{run.grid.waste(k):.1%}")  # fmt: skip
    console = Console()
    console.print(table)
    causes = sorted(run.totals["predictive"].causes.items(), key=lambda item: -item[1])
    if causes:
        console.print(
            "Predictive's stock-out days by cause: "
            + ", ".join(f"{cause} {count}" for cause, count in causes)
        )
    front = report["frontier"]
    if front["threshold_stockout_days"] is not None:
        console.print(
            f"Threshold curve at {front['orders']} orders: "
            f"{front['threshold_stockout_days']:.1f} stock-out days, mean stock "
            f"{front['threshold_mean_on_hand']:.1%} (predictive "
            f"{report['predictive']['mean_on_hand']:.1%})."
        )
    lines = [f"pooled {_ratio_text(front)}"]
    if len(run.per_seed) > 1:
        lines += [f"seed {seed} {_ratio_text(r['frontier'])}" for seed, r in run.per_seed.items()]
    for name in run.totals:
        if name != "predictive":
            lines.append(f"{name} {_ratio_text(report[name]['frontier'])}")
    result = verdict(run)
    console.print("Threshold stock-out days / predictive's at equal orders: " + "; ".join(lines))
    console.print(
        f"Target (pooled >= {TARGET_POOLED}x, each seed >= {TARGET_EACH}x, no more stock): "
        f"{'met' if result['met'] else 'NOT met'}."
    )
    console.print(f"Wall time: {seconds:.1f} s")


def plot_frontier(run: Run, risk_points: Sequence[tuple[float, dict[str, Any]]], path: str) -> None:
    """Write a PNG: stock-out days against orders, the threshold grid and predictive's risks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = run.report["threshold_grid"]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot([r["orders"] for r in grid], [max(r["stockout_days"], 0.5) for r in grid],
            "-o", ms=3, color="tab:blue", label="fixed reorder point 5-60%")  # fmt: skip
    for risk, row in risk_points:
        ax.plot(row["orders"], max(row["stockout_days"], 0.5), "s", color="tab:red")
        ax.annotate(f"risk {risk:g}", (row["orders"], max(row["stockout_days"], 0.5)),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")  # fmt: skip
    pred = run.report["predictive"]
    ax.plot(pred["orders"], max(pred["stockout_days"], 0.5), "*", ms=12, color="tab:red",
            label="predictive, link defaults")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("orders")
    ax.set_ylabel("stock-out days (log)")
    ax.legend()
    ax.set_title("Stock-out days against orders")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_households(
    kept: dict[str, dict[int, tuple[Household, Trace]]], best: dict[str, Any], path: str
) -> None:
    """Write a PNG: a few households' levels, predictive beside the threshold at its orders."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    other = "threshold"
    indices = sorted(kept["predictive"])
    fig, axes = plt.subplots(
        len(indices), 2, figsize=(13, 2.6 * len(indices)), sharex=True, squeeze=False
    )
    for row, index in enumerate(indices):
        for col, (name, title) in enumerate(
            (("predictive", "predictive"), (other, f"reorder at {best['reorder_point']:.1%}"))
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


def kept_traces(
    households: int, days: int, seed: int, run: Run, settings: LinkSettings, world: World
) -> tuple[dict[str, dict[int, tuple[Household, Trace]]], dict[str, Any]]:
    """Daily traces of a few households: predictive and the grid point nearest its orders."""
    pred_orders = run.report["predictive"]["orders"]
    best = min(run.report["threshold_grid"], key=lambda row: abs(row["orders"] - pred_orders))
    kept: dict[str, dict[int, tuple[Household, Trace]]] = {"predictive": {}, "threshold": {}}
    for index in households_to_plot(households, days, seed, world):
        hh = make_household(seed, index, days, world)
        kept["predictive"][index] = (hh, run_household(hh, settings.policy(hh), record=True))
        threshold = ThresholdPolicy(reorder_point=best["reorder_point"] * hh.capacity)
        kept["threshold"][index] = (hh, run_household(hh, threshold, record=True))
    return kept, best


def households_to_plot(households: int, days: int, seed: int, world: World) -> list[int]:
    """A spread of consumption rates: the lightest, two in between and the heaviest user."""
    sample = range(min(households, 40))
    rates = {i: (h := make_household(seed, i, days, world)).rate / h.capacity for i in sample}
    by_rate = sorted(sample, key=rates.__getitem__)
    if len(by_rate) <= PLOT_HOUSEHOLDS:
        return by_rate
    step = (len(by_rate) - 1) / (PLOT_HOUSEHOLDS - 1)
    return sorted({by_rate[round(k * step)] for k in range(PLOT_HOUSEHOLDS)})
