"""Run-out in words: the dashboard sentence, the spoken supply level, and the pure predictor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.charts import runout
from orders.queries.devices import SupplyLevel as SlotLevel
from orders.queries.runout import runout_of
from orders.queries.supplies import SupplyLevel
from voice_skill import speech

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _slot(runout_at: datetime | None, rate: float | None = 4.0) -> SlotLevel:
    return SlotLevel("pods", "count", 50, 10, NOW, (), rate_per_day=rate, runout_at=runout_at)


def test_the_dashboard_names_the_day_and_how_soon() -> None:
    """Friday 27 Nov, three days on, at 4 a day."""
    said = runout(_slot(NOW + timedelta(days=3)), NOW)
    assert (
        said
        == "Predicted to run out around Fri 27 Nov UTC (in about 3 days, at about 4 count a day)."
    )


def test_the_dashboard_says_within_a_day_and_nothing_without_a_date() -> None:
    """Less than a day: "within a day"; no date: empty."""
    assert "(within a day, at about 4 count a day)" in runout(_slot(NOW + timedelta(hours=5)), NOW)
    assert runout(_slot(None), NOW) == ""


def _spoken(days_left: float | None) -> str:
    level = SupplyLevel("Coffee pods", "pods", "count", 6, 50, NOW, 2.0, days_left)
    return speech.supply_level(level)


@pytest.mark.parametrize(
    ("days", "ending"),
    [
        (3.2, "about 6 coffee pods left, enough for about 3 days."),
        (1.2, "about 6 coffee pods left, enough for about 1 day."),
        (0.3, "about 6 coffee pods left, which will probably run out today."),
        (None, "about 6 coffee pods left."),
    ],
)
def test_the_skill_speaks_the_estimate_as_an_estimate(days: float | None, ending: str) -> None:
    """Days left are a prediction, so they are spoken with "about"."""
    assert _spoken(days).endswith(ending)


def test_the_pure_predictor_needs_a_believable_reading() -> None:
    """No readings, or only one from a clock an hour ahead: None; one fresh reading: no date."""
    assert runout_of((), 50, NOW) is None
    assert runout_of(((NOW + timedelta(hours=3), 20.0),), 50, NOW) is None
    assert runout_of(((NOW, 20.0),), 50, NOW) == (20.0, None, None)
