"""Supply charts drawn on the server as inline SVG: no JavaScript, with a text alternative.

Each chart has a time axis in the viewer's zone, the level to reorder at, the predicted
run-out as a dashed line down to empty, and a mark where an order was placed or delivered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from markupsafe import Markup, escape

from dashboard.times import local
from orders.queries.devices import LOW_SUPPLY_FRACTION, SupplyLevel
from orders.store.db import utcnow

WIDTH, HEIGHT = 360, 150
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 30
# A run-out further ahead than this many spans of history squeezes the readings too much.
MAX_AHEAD_SPANS = 3
INK, MUTED, BAD, ACCENT, GOOD = "#1c1f24", "#535c68", "#b3261e", "#1a5fb4", "#1e6b30"


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
    """The predicted run-out in words: "Predicted to run out around Tue 1 Dec (in about 3 days)"."""
    if level.runout_at is None:
        return level.no_runout_because or ""
    days = (level.runout_at - (now or utcnow())) / timedelta(days=1)
    day = local(level.runout_at, "%a %-d %b")
    if days < 1:
        soon = "within a day"
    else:
        soon = f"in about {round(days)} day{'' if round(days) == 1 else 's'}"
    rate = ""
    if level.rate_per_day:
        rate = f", at about {_number(level.rate_per_day)} {level.unit} a day"
    return f"Predicted to run out around {day} ({soon}{rate})."


def _reorder_level(level: SupplyLevel) -> tuple[float, str]:
    if level.reorder_point is not None:
        return level.reorder_point, f"reorder at {_number(level.reorder_point)}"
    return level.capacity * LOW_SUPPLY_FRACTION, "low"


def _span(level: SupplyLevel, points: list[tuple[datetime, float]]) -> tuple[datetime, datetime]:
    start, end = points[0][0], points[-1][0]
    if end - start < timedelta(hours=1):
        start, end = start - timedelta(hours=1), end + timedelta(hours=1)
    if level.runout_at is not None and level.runout_at > end:
        if level.runout_at - start <= (end - start) * (MAX_AHEAD_SPANS + 1):
            end = level.runout_at
    return start, end


def supply_chart(level: SupplyLevel, chart_id: str) -> Markup:
    """An SVG of the slot's recent levels against time and capacity, with its reorder level,
    predicted run-out and order/delivery marks; its title and description say the same."""
    points = list(level.history)
    if not points and level.value is not None and level.measured_at is not None:
        points = [(level.measured_at, level.value)]
    label = describe(level)
    if not points:
        return Markup('<p class="muted">{}</p>').format(label)
    start, end = _span(level, points)
    span = (end - start).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + (at - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        share = max(0.0, min(1.0, value / level.capacity))
        return TOP + plot_h - share * plot_h

    parts: list[str] = []
    add = parts.append
    base_y, top_y = y(0), y(level.capacity)
    add(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#f6f7f9"/>')
    add(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{base_y:.1f}" y2="{base_y:.1f}" '
        f'stroke="{MUTED}"/>')  # fmt: skip
    add(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base_y:.1f}" stroke="{MUTED}"/>')
    for value, anchor_y in ((level.capacity, top_y), (0.0, base_y)):
        add(f'<text x="{LEFT - 4}" y="{anchor_y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{MUTED}">{escape(_number(value))}</text>')  # fmt: skip
    add(f'<text x="4" y="{TOP + plot_h / 2 + 4:.1f}" font-size="11" fill="{MUTED}">'
        f"{escape(level.unit)}</text>")  # fmt: skip
    for share in (0.0, 0.5, 1.0):
        at = start + (end - start) * share
        fmt = "%H:%M" if end - start <= timedelta(days=2) else "%-d %b"
        anchor = ("start", "middle", "end")[int(share * 2)]
        add(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{base_y:.1f}" y2="{base_y + 4:.1f}" '
            f'stroke="{MUTED}"/>')  # fmt: skip
        add(f'<text x="{x(at):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}" font-size="12" '
            f'fill="{MUTED}">{escape(local(at, fmt))}</text>')  # fmt: skip
    reorder, reorder_label = _reorder_level(level)
    ry = y(reorder)
    add(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ry:.1f}" y2="{ry:.1f}" stroke="{BAD}" '
        f'stroke-dasharray="4 3"/>')  # fmt: skip
    add(f'<text x="{LEFT + plot_w - 2}" y="{ry - 3:.1f}" text-anchor="end" font-size="11" '
        f'fill="{BAD}">{escape(reorder_label)}</text>')  # fmt: skip
    for at, kind in level.markers:
        if start <= at <= end:
            colour = ACCENT if kind == "ordered" else GOOD
            mx = x(at)
            add(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{TOP}" y2="{base_y:.1f}" '
                f'stroke="{colour}" stroke-dasharray="2 2"/>')  # fmt: skip
            add(f'<text x="{mx + 2:.1f}" y="{TOP + 10}" font-size="11" fill="{colour}">'
                f"{'order' if kind == 'ordered' else 'delivered'}</text>")  # fmt: skip
    colour = BAD if level.low else ACCENT
    line = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in points)
    add(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
    last_x, last_y = x(points[-1][0]), y(points[-1][1])
    add(f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="3" fill="{colour}"/>')
    if level.runout_at is not None and level.runout_at <= end:
        ex = x(level.runout_at)
        add(f'<line x1="{last_x:.1f}" y1="{last_y:.1f}" x2="{ex:.1f}" y2="{base_y:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 4"/>')  # fmt: skip
        add(f'<text x="{ex - 2:.1f}" y="{base_y - 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{INK}">empty</text>')  # fmt: skip
    desc = " ".join(
        part
        for part in (
            runout(level),
            f"The dashed red line marks the level to {reorder_label}.",
            _marks_in_words(level.markers),
        )
        if part
    )
    return Markup(
        '<svg class="chart" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-t">{label}</title><desc id="{id}-d">{desc}</desc>{body}</svg>'
    ).format(id=chart_id, w=WIDTH, h=HEIGHT, label=label, desc=desc, body=Markup("".join(parts)))


def _marks_in_words(markers: tuple[tuple[datetime, str], ...]) -> str:
    if not markers:
        return ""
    said = [f"{kind} {local(at, '%a %-d %b %H:%M')}" for at, kind in markers]
    return "Orders: " + "; ".join(said) + "."
