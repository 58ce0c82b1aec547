"""Pure pieces of the dashboard: SVG charts, money, cursors, aliases and redirect URIs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from auth.clients import check_redirect_uris
from dashboard import charts
from dashboard.charts import describe, supply_chart
from dashboard.common import money
from orders.domain.errors import InvalidRequest
from orders.queries.devices import SupplyLevel
from orders.queries.pages import encode_time_cursor, id_cursor, time_cursor
from orders.services.merchant import parse_aliases

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _level(values: list[float], slot: str = "pods", capacity: float = 50) -> SupplyLevel:
    history = tuple((T0 + timedelta(hours=i), v) for i, v in enumerate(values))
    last = history[-1] if history else (None, None)
    return SupplyLevel(slot, "count", capacity, last[1], last[0], history)


def test_chart_is_an_svg_line_scaled_to_capacity() -> None:
    """Full capacity sits at the top, empty at the bottom, time runs left to right."""
    svg = str(supply_chart(_level([50, 25, 0]), "c1"))
    points = svg.split('points="', 1)[1].split('"', 1)[0].split()
    xs = [float(p.split(",")[0]) for p in points]
    ys = [float(p.split(",")[1]) for p in points]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    bottom = charts.TOP + (charts.HEIGHT - charts.TOP - charts.BOTTOM)
    assert ys[0] == charts.TOP and ys[-1] == bottom and ys[1] == (charts.TOP + bottom) / 2
    assert 'role="img"' in svg and '<title id="c1-t">' in svg


def test_chart_has_a_time_axis_and_the_reorder_level() -> None:
    """Hours label the time axis of a short history; the low line is named; so is the unit."""
    svg = str(supply_chart(_level([50, 40, 30]), "c3"))
    assert ">12:00 UTC</text>" in svg and ">14:00 UTC</text>" in svg
    assert ">low</text>" in svg and ">count</text>" in svg
    own = replace(_level([50, 40, 30]), reorder_point=15.0)
    assert ">reorder at 15</text>" in str(supply_chart(own, "c4"))


def test_chart_draws_the_predicted_run_out_and_order_marks() -> None:
    """A dashed line runs from the last reading down to empty; orders and deliveries are marked."""
    level = replace(
        _level([50, 40, 30]),
        runout_at=T0 + timedelta(hours=5),
        markers=((T0 + timedelta(hours=1), "ordered"), (T0 + timedelta(hours=2), "delivered")),
    )
    svg = str(supply_chart(level, "c5"))
    assert ">empty</text>" in svg and ">order</text>" in svg and ">delivered</text>" in svg
    assert "Predicted to run out around Sun 1 Nov" in svg  # in the <desc>, for screen readers
    assert "Orders: ordered Sun 1 Nov 13:00 UTC; delivered Sun 1 Nov 14:00 UTC." in svg


def test_chart_says_why_there_is_no_prediction() -> None:
    """Without a run-out date the text alternative gives the reason instead."""
    level = replace(_level([50, 40]), no_runout_because="Not enough readings yet to predict.")
    assert "Not enough readings yet to predict." in str(supply_chart(level, "c6"))
    assert charts.runout(level) == "Not enough readings yet to predict."


def test_chart_text_alternative_says_level_share_and_low() -> None:
    """The SVG title (and the text beside it) reads the level, its share, and low."""
    assert describe(_level([40, 5])) == (
        "pods: 5 of 50 count (10%), from 40 over the last 2 readings, low."
    )
    assert describe(_level([])) == "pods: no readings yet."
    assert "<svg" not in str(supply_chart(_level([]), "c2"))


def test_chart_escapes_slot_names() -> None:
    """A slot name is data from a device: it can't inject markup into the page."""
    svg = str(supply_chart(_level([10], slot="<script>x</script>"), 'a"b'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and 'a"b' not in svg


def test_money_renders_minor_units() -> None:
    """Integer minor units become two-decimal amounts with the currency."""
    assert money(159900, "EUR") == "EUR 1,599.00"
    assert money(5, "USD") == "USD 0.05"
    assert money(None) == "—"


def test_time_cursor_round_trips_and_rejects_garbage() -> None:
    """A cursor names one (time, id) exactly; anything else is InvalidRequest."""
    moment = T0 + timedelta(microseconds=123456)
    assert time_cursor(encode_time_cursor(moment, "abc")) == (moment, "abc")
    assert id_cursor("42") == 42 and id_cursor(None) is None
    for bad in ("x", "1.", ".a", "9" * 30 + ".a"):
        with pytest.raises(InvalidRequest):
            time_cursor(bad)
    with pytest.raises(InvalidRequest):
        id_cursor("-1")


def test_aliases_are_cleaned_and_deduplicated() -> None:
    """Aliases are lower-cased, whitespace-collapsed and unique; odd characters are refused."""
    assert parse_aliases("Coffee,  coffee pods\n\nCOFFEE") == ["coffee", "coffee pods"]
    with pytest.raises(InvalidRequest):
        parse_aliases("coffee; DROP TABLE")


def test_redirect_uris_must_be_https_and_absolute() -> None:
    """https only (http for localhost), no fragments, at least one."""
    assert check_redirect_uris(["https://a.example/cb", " https://a.example/cb "]) == [
        "https://a.example/cb"
    ]
    assert check_redirect_uris(["http://localhost:8080/cb"]) == ["http://localhost:8080/cb"]
    for bad in (["http://a.example/cb"], ["https://a.example/cb#x"], ["/relative"], [""]):
        with pytest.raises(InvalidRequest):
            check_redirect_uris(bad)


def test_no_prediction_reasons_name_what_is_missing() -> None:
    """No readings, too short a history, or a level that is not falling: each said plainly."""
    from orders.queries.runout import Runout, why_no_runout

    assert why_no_runout((), None).startswith("No readings yet")
    short = tuple((T0 + timedelta(hours=i), 50.0 - i) for i in range(5))
    assert "needs 5 days of readings, and there are 0.2" in why_no_runout(short, None)
    long = tuple((T0 + timedelta(days=i), 30.0) for i in range(8))
    assert "not going down" in why_no_runout(long, Runout(30.0, 0.0, None))
    assert "don't show steady use" in why_no_runout(long, Runout(30.0, None, None))
