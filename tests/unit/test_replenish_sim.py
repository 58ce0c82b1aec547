"""The replenishment simulation: output shape and determinism on a small world."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import replenish_sim
from bench.replenish_frontier import frontier_at, run_grid
from bench.replenish_world import World
from orders.domain.replenishment import ThresholdPolicy


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """Run the CLI with --json and parse its last stdout line."""
    assert replenish_sim.main([*args, "--json", "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_small_run_prints_the_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """The last line names predictive, the fine threshold grid and the frontier at its orders."""
    report = run_json(capsys, "--households", "10", "--days", "45", "--seed", "3")
    assert set(report) == {"predictive", "threshold_grid", "frontier"}
    assert set(report["predictive"]) == {"stockout_days", "orders", "mean_on_hand"}
    grid = report["threshold_grid"]
    points = [row["reorder_point"] for row in grid]
    assert points[0] == 0.05 and points[-1] == 0.6 and len(points) == 23
    for row in [report["predictive"], *grid]:
        assert row["stockout_days"] >= 0 and row["orders"] > 0
        assert 0.0 < row["mean_on_hand"] < 1.0
    # A higher reorder point holds more stock: the world and policies are really running.
    assert grid[-1]["mean_on_hand"] > grid[0]["mean_on_hand"]
    frontier = report["frontier"]
    assert set(frontier) == {"orders", "threshold_stockout_days", "threshold_mean_on_hand", "ratio"}
    assert frontier["orders"] == report["predictive"]["orders"]


def test_grid_step_sets_the_spacing_of_the_fixed_points(capsys: pytest.CaptureFixture[str]) -> None:
    """--grid-step 0.05 gives twelve points from 5% to 60%."""
    report = run_json(capsys, "--households", "4", "--days", "30", "--grid-step", "0.05")
    points = [row["reorder_point"] for row in report["threshold_grid"]]
    assert points == pytest.approx([0.05 * k for k in range(1, 13)])


def test_the_fast_grid_plays_exactly_as_the_threshold_policy_would() -> None:
    """The grid run (arrays over reorder points) matches ThresholdPolicy in run_household."""
    shares = (0.05, 0.25, 0.5)
    for index in range(4):
        hh = replenish_sim.make_household(3, index, 200)
        grid = run_grid(hh, shares)
        for k, share in enumerate(shares):
            trace = replenish_sim.run_household(hh, ThresholdPolicy(share * hh.capacity))
            assert (trace.stockout_days, trace.orders) == (grid.stockout_days[k], grid.orders[k])
            assert trace.on_hand_share == pytest.approx(grid.on_hand_share[k])


def test_the_frontier_is_read_at_predictives_orders() -> None:
    """Orders and stock linearly, stock-out days on a log scale between the bracketing points."""
    grid = [
        {"reorder_point": 0.1, "stockout_days": 100, "orders": 100, "mean_on_hand": 0.4},
        {"reorder_point": 0.2, "stockout_days": 25, "orders": 200, "mean_on_hand": 0.5},
        {"reorder_point": 0.3, "stockout_days": 0, "orders": 300, "mean_on_hand": 0.6},
    ]
    mid = frontier_at(grid, {"stockout_days": 10, "orders": 150, "mean_on_hand": 0.3})
    assert mid["threshold_stockout_days"] == pytest.approx(50.0)  # geometric mean of 100, 25
    assert mid["threshold_mean_on_hand"] == pytest.approx(0.45)
    assert mid["ratio"] == pytest.approx(5.0)
    # A zero end is interpolated linearly; outside the grid there is no figure.
    assert frontier_at(grid, {"stockout_days": 5, "orders": 250})["threshold_stockout_days"] == 12.5
    assert frontier_at(grid, {"stockout_days": 5, "orders": 400})["ratio"] is None


def test_seeds_are_pooled_and_reported_one_by_one(capsys: pytest.CaptureFixture[str]) -> None:
    """--seeds runs each seed; the top level is their sum, each seed's report beside it."""
    args = ("--households", "6", "--days", "60")
    pooled = run_json(capsys, *args, "--seeds", "7,8")
    seven = run_json(capsys, *args, "--seed", "7")
    eight = run_json(capsys, *args, "--seed", "8")
    assert pooled["seeds"]["7"]["predictive"] == seven["predictive"]
    for key in ("stockout_days", "orders"):
        assert pooled["predictive"][key] == seven["predictive"][key] + eight["predictive"][key]
    assert pooled["threshold_grid"][3]["orders"] == (
        seven["threshold_grid"][3]["orders"] + eight["threshold_grid"][3]["orders"]
    )


def test_a_busier_world_keeps_every_surprise_and_adds_more() -> None:
    """Doubling the delay and jump rates only adds held-up parcels and busy days."""
    calm = replenish_sim.make_household(2, 1, 365)
    busy = replenish_sim.make_household(2, 1, 365, World(delay_rate=0.12, spike_rate=0.04))
    assert (busy.lead_days >= calm.lead_days).all() and (busy.lead_days > calm.lead_days).any()
    assert (busy.demand >= calm.demand).all() and (busy.demand > calm.demand).any()
    assert (busy.reported == calm.reported).all()


def test_the_store_knows_only_parcels_already_delivered() -> None:
    """Lead times the policy sees end before the day asked about, newest last."""
    hh = replenish_sim.make_household(4, 0, 120)
    seen = hh.store_lead_times(60, 30)
    assert 0 < len(seen) <= 30
    assert hh.store_lead_times(0, 30) and len(hh.store_lead_times(0, 5)) == 5


def test_same_seed_gives_the_same_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs with one seed agree exactly; another seed gives another world."""
    args = ("--households", "6", "--days", "45", "--seed", "11")
    first = run_json(capsys, *args)
    second = run_json(capsys, *args)
    other = run_json(capsys, "--households", "6", "--days", "45", "--seed", "12")
    assert first == second
    assert other != first


def test_every_policy_sees_the_same_world() -> None:
    """Households are drawn once per seed and index, whatever policy runs on them."""
    a = replenish_sim.make_household(5, 2, 30)
    b = replenish_sim.make_household(5, 2, 30)
    assert a.capacity == b.capacity and (a.demand == b.demand).all()
    assert (a.lead_days == b.lead_days).all()


def test_human_output_names_the_frontier_and_plot_draws_both(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without --json a table and the verdict are printed; --plot writes levels and frontier."""
    plot = tmp_path / "levels.png"
    argv = ["--households", "4", "--days", "30", "--seed", "1", "--no-progress"]
    assert replenish_sim.main([*argv, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "predictive" in out and "reorder at 60.0%" in out
    assert "Target (pooled" in out
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "levels-frontier.png").read_bytes().startswith(b"\x89PNG")


def test_link_settings_change_predictive_only(capsys: pytest.CaptureFixture[str]) -> None:
    """--risk and --up-to-full reach the predictive links; the fixed points stay as they were."""
    args = ("--households", "6", "--days", "60", "--seed", "4")
    default = run_json(capsys, *args)
    full = run_json(capsys, *args, "--up-to-full", "--risk", "0.05", "--late-reorder-days", "2")
    assert full["threshold_grid"] == default["threshold_grid"]
    assert full["predictive"] != default["predictive"]
    # The opt-in variant runs beside, read against the same curve.
    late = full["predictive_late_reorder"]
    assert set(late) == {"stockout_days", "orders", "mean_on_hand", "frontier"}


def test_bad_link_settings_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad risks, rates, grids or seeds, or a cover period with --up-to-full: usage errors."""
    for bad in (
        ["--risk", "1.5"],
        ["--risk", "0"],
        ["--cover-days", "20", "--up-to-full"],
        ["--delay-rate", "1.5"],
        ["--grid-step", "0"],
        ["--seeds", "1,1"],
        ["--seeds", "x"],
        ["--seed", "1", "--seeds", "2,3"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            replenish_sim.main(["--households", "2", "--days", "5", *bad])
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_stockout_causes_add_up_and_waste_is_a_share() -> None:
    """Every stock-out day gets one cause; overflow is a share of what was delivered."""
    run = replenish_sim.simulate(10, 90, 6, progress=False)
    totals = run.totals["predictive"]
    assert sum(totals.causes.values()) == totals.stockout_days
    assert 0.0 <= totals.waste() < 1.0
    assert all(0.0 <= run.grid.waste(k) < 1.0 for k in range(len(run.shares)))


def test_a_parcel_held_up_past_the_latest_on_time_day_is_named() -> None:
    """The breakdown tells a held-up parcel from an order placed too late."""
    hh = replenish_sim.make_household(1, 0, 30)
    late = int(min(hh.promised_lead_days + replenish_sim.ON_TIME_SLACK_DAYS, 5))
    held = dataclasses.replace(hh, lead_days=np.full(30, late + 2))
    on_time = dataclasses.replace(hh, lead_days=np.full(30, late))
    assert replenish_sim.stockout_cause(held, 10, True, 8, 9) == "parcel held up"
    assert replenish_sim.stockout_cause(on_time, 10, True, 8, 9) == "ordered too late"
    assert replenish_sim.stockout_cause(hh, 10, True, None, 5) == "sensor silent, no order"
    assert replenish_sim.stockout_cause(hh, 10, True, None, 9) == "not ordered"
    assert replenish_sim.stockout_cause(hh, 3, False, 1, 2) == "before the first delivery"
