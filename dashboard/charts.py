"""Supply charts drawn on the server as inline SVG: no JavaScript, with a text alternative."""

from __future__ import annotations

from datetime import datetime, timedelta

from markupsafe import Markup, escape

from orders.queries.devices import LOW_SUPPLY_FRACTION, SupplyLevel
from orders.store.db import utcnow

WIDTH, HEIGHT, PAD = 240, 64, 4


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def describe(level: SupplyLevel) -> str:
    """One sentence a screen reader (or a reader without SVG) gets instead of the chart."""
    if level.value is None:
        return f"{level.slot}: no readings yet."
    share = round((level.fraction or 0) * 100)
    text = (
        f"{level.slot}: {_number(level.value)} of {_number(level.capacity)} {level.unit} ({share}%)"
    )
    if len(level.history) > 1:
        first = level.history[0][1]
        text += f", from {_number(first)} over the last {len(level.history)} readings"
    return text + (", low." if level.low else ".")


def runout(level: SupplyLevel, now: datetime | None = None) -> str:
    """The predicted run-out date in words: "Runs out around Tue 1 Dec (in about 3 days)"."""
    if level.runout_at is None:
        return ""
    days = (level.runout_at - (now or utcnow())) / timedelta(days=1)
    day = f"{level.runout_at:%a} {level.runout_at.day} {level.runout_at:%b}"
    if days < 1:
        soon = "within a day"
    else:
        soon = f"in about {round(days)} day{'' if round(days) == 1 else 's'}"
    rate = ""
    if level.rate_per_day:
        rate = f", at about {_number(level.rate_per_day)} {level.unit} a day"
    return f"Predicted to run out around {day} UTC ({soon}{rate})."


def supply_chart(level: SupplyLevel, chart_id: str) -> Markup:
    """An SVG line of the slot's recent levels against its capacity, with a low-supply line."""
    points = list(level.history)
    if not points and level.value is not None and level.measured_at is not None:
        points = [(level.measured_at, level.value)]
    label = escape(describe(level))
    if not points:
        return Markup('<p class="muted">{}</p>').format(label)
    start, end = points[0][0], points[-1][0]
    span = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        if len(points) == 1:
            return WIDTH / 2
        return PAD + (at - start).total_seconds() / span * (WIDTH - 2 * PAD)

    def y(value: float) -> float:
        share = max(0.0, min(1.0, value / level.capacity))
        return HEIGHT - PAD - share * (HEIGHT - 2 * PAD)

    line = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
    low_y = y(level.capacity * LOW_SUPPLY_FRACTION)
    colour = "#b3261e" if level.low else "#1a5fb4"
    last_x, last_y = x(points[-1][0]), y(points[-1][1])
    return Markup(
        '<svg class="chart" role="img" aria-labelledby="{id}-t" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-t">{label}</title>'
        '<rect x="0" y="0" width="{w}" height="{h}" fill="#f6f7f9" stroke="#c7ccd3"/>'
        '<line x1="{p}" x2="{wp}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#b3261e" '
        'stroke-dasharray="4 3" stroke-width="1"/>'
        '<polyline fill="none" stroke="{c}" stroke-width="2" points="{line}"/>'
        '<circle cx="{lx:.1f}" cy="{lyy:.1f}" r="3" fill="{c}"/>'
        "</svg>"
    ).format(
        id=escape(chart_id), w=WIDTH, h=HEIGHT, p=PAD, wp=WIDTH - PAD, ly=low_y, c=colour,
        line=line, lx=last_x, lyy=last_y, label=label,
    )  # fmt: skip
