"""The replenishment simulation: output shape and determinism on a small world."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import replenish_sim


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """Run the CLI with --json and parse its last stdout line."""
    assert replenish_sim.main([*args, "--json", "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_small_run_prints_the_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    """The last line names the predictive figures and one row per fixed reorder point."""
    report = run_json(capsys, "--households", "20", "--days", "60", "--seed", "3")
    assert set(report) == {"predictive", "threshold_grid"}
    assert set(report["predictive"]) == {"stockout_days", "orders", "mean_on_hand"}
    grid = report["threshold_grid"]
    assert [row["reorder_point"] for row in grid] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    for row in [report["predictive"], *grid]:
        assert row["stockout_days"] >= 0 and row["orders"] > 0
        assert 0.0 < row["mean_on_hand"] < 1.0
    # A higher reorder point holds more stock: the world and policies are really running.
    assert grid[-1]["mean_on_hand"] > grid[0]["mean_on_hand"]


def test_same_seed_gives_the_same_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs with one seed agree exactly; another seed gives another world."""
    args = ("--households", "20", "--days", "60", "--seed", "11")
    first = run_json(capsys, *args)
    second = run_json(capsys, *args)
    other = run_json(capsys, "--households", "20", "--days", "60", "--seed", "12")
    assert first == second
    assert other != first


def test_every_policy_sees_the_same_world() -> None:
    """Households are drawn once per seed and index, whatever policy runs on them."""
    a = replenish_sim.make_household(5, 2, 30)
    b = replenish_sim.make_household(5, 2, 30)
    assert a.capacity == b.capacity and (a.demand == b.demand).all()
    assert (a.lead_days == b.lead_days).all()


def test_human_output_names_the_best_comparable_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without --json a table and the comparison are printed, and --plot writes a PNG."""
    plot = tmp_path / "levels.png"
    argv = ["--households", "8", "--days", "40", "--seed", "1", "--no-progress"]
    assert replenish_sim.main([*argv, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "predictive" in out and "reorder at 60%" in out
    assert "Best comparable fixed point" in out or "No fixed reorder point" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_link_settings_change_predictive_only(capsys: pytest.CaptureFixture[str]) -> None:
    """--risk and --up-to-full reach the predictive links; the fixed points stay as they were."""
    args = ("--households", "12", "--days", "90", "--seed", "4")
    default = run_json(capsys, *args)
    full = run_json(capsys, *args, "--up-to-full", "--risk", "0.05")
    assert full["threshold_grid"] == default["threshold_grid"]
    assert full["predictive"] != default["predictive"]


def test_bad_link_settings_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A risk outside (0, 1) or a cover period with --up-to-full is a usage error."""
    for bad in (["--risk", "1.5"], ["--risk", "0"], ["--cover-days", "20", "--up-to-full"]):
        with pytest.raises(SystemExit) as exit_info:
            replenish_sim.main(["--households", "2", "--days", "5", *bad])
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_stockout_causes_add_up_and_waste_is_a_share() -> None:
    """Every stock-out day gets one cause; overflow is a share of what was delivered."""
    run = replenish_sim.simulate(25, 120, 6, progress=False)
    for name, totals in run.totals.items():
        assert sum(totals.causes.values()) == totals.stockout_days, name
        assert 0.0 <= totals.waste() < 1.0
    # Fixed points at 10% run out often enough to need more than one kind of explanation.
    assert len(run.totals["0.1"].causes) > 1


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
