"""Times as the viewer reads them: in their chosen zone, else the store's, in a <time> element."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import g, has_request_context
from flask_login import current_user
from markupsafe import Markup

from dashboard.common import get_db
from orders.services.merchant import store_time_zone
from orders.store.db import utcnow


def viewer_zone() -> ZoneInfo:
    """The account's own zone, else this page's store's, else the first store's (once a request)."""
    if not has_request_context():  # e.g. a chart drawn in a unit test
        return ZoneInfo("UTC")
    if "viewer_zone" not in g:
        name = getattr(current_user, "time_zone", None)
        if not name:
            name = store_time_zone(get_db(), g.get("store_id") or None)
        try:
            g.viewer_zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):  # a zone tzdata dropped since it was chosen
            g.viewer_zone = ZoneInfo("UTC")
    zone: ZoneInfo = g.viewer_zone
    return zone


def local(moment: datetime, fmt: str = "%a %-d %b %Y, %H:%M") -> str:
    """`moment` in the viewer's zone, formatted, with the zone's abbreviation."""
    shown = moment.astimezone(viewer_zone())
    return f"{shown.strftime(fmt)} {shown.tzname()}"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    if seconds < -90:
        ahead = -seconds
        if ahead < 5400:
            return f"in {ahead // 60} min"
        if ahead < 172800:
            return f"in {ahead // 3600} h"
        return f"in {ahead // 86400} days"
    if seconds < 90:
        return "just now"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def time_tag(
    moment: datetime, fmt: str = "%a %-d %b %Y, %H:%M", *, relative: bool = False
) -> Markup:
    """A <time> element: machine-readable UTC in `datetime`, the viewer's local time as text."""
    stamp = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = local(moment, fmt)
    if relative:
        text += f" ({_ago(moment, utcnow())})"
    return Markup('<time datetime="{}">{}</time>').format(stamp, text)


def when(moment: datetime | None) -> Markup | str:
    """A time people can read, in their zone, with how long ago."""
    if moment is None:
        return "never"
    return time_tag(moment, relative=True)


def day(moment: datetime) -> Markup:
    """A date only ("Tue 1 Dec"), in the viewer's zone."""
    shown = moment.astimezone(viewer_zone())
    stamp = shown.date().isoformat()
    return Markup('<time datetime="{}">{} {} {}</time>').format(
        stamp, shown.strftime("%a"), shown.day, shown.strftime("%b")
    )


def until(moment: datetime) -> Markup:
    """A deadline today-ish: the clock time in the viewer's zone ("until 14:35 CET")."""
    return time_tag(moment, "%H:%M")
