"""Notices to shoppers: which events become which notice, and what a notice says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# In the order a settings page lists them.
NOTICE_TEXT = {
    "order_placed": "an order is placed (with a link to cancel it in time)",
    "approval_needed": "an order waits for my approval",
    "order_shipped": "an order ships",
    "order_delayed": "a delivery is late",
    "order_delivered": "an order is delivered",
    "supply_low": "a device on alert only runs low",
    "link_attempted": "someone else tries to link one of my devices",
    "voice_locked": "voice purchases lock after wrong PINs",
}
# The webhook type of an order event -> the shopper's notice about it.
ORDER_NOTICES = {
    "order.placed": "order_placed",
    "order.pending_approval": "approval_needed",
    "order.shipped": "order_shipped",
    "order.delayed": "order_delayed",
    "order.delivered": "order_delivered",
}
# Sending again after a failed attempt: 1 min, 5 min, 30 min, 2 h; then it is `failed`.
RETRY_MINUTES = (1, 5, 30, 120)


@dataclass(frozen=True)
class NoticeText:
    """What a notice says: a title (e-mail subject) and a few sentences."""

    title: str
    body: str


def email_kinds(chosen: list[str] | None) -> frozenset[str]:
    """The kinds a shopper gets by e-mail: their choice, or every kind when never chosen."""
    return frozenset(NOTICE_TEXT) if chosen is None else frozenset(chosen) & set(NOTICE_TEXT)


def text_of(kind: str, data: dict[str, Any]) -> NoticeText:
    """The words of a notice of `kind` with its `data` (as written when it was raised)."""
    what = data.get("summary") or "your order"
    total = data.get("total") or ""
    if kind == "order_placed":
        until = _time(data.get("cancel_until"))
        cancel = f" You can cancel it until {until}." if until else ""
        return NoticeText(f"Order placed: {what}", f"We placed {what} ({total}).{cancel}")
    if kind == "approval_needed":
        return NoticeText(
            f"Approve this order? {what}",
            f"{data.get('device') or 'A device'} wants to order {what} ({total}). "
            + (f"{data['held']} " if data.get("held") else "")
            + "Nothing ships until you approve it.",
        )
    if kind == "order_shipped":
        carrier = f" with {data['carrier']}" if data.get("carrier") else ""
        return NoticeText(f"Shipped: {what}", f"{what.capitalize()} is on its way{carrier}.")
    if kind == "order_delayed":
        expected = _time(data.get("expected"))
        later = f" It is now expected {expected}." if expected else ""
        reason = f" The carrier says: {data['reason']}." if data.get("reason") else ""
        body = f"{what.capitalize()} is running late.{later}{reason}"
        return NoticeText(f"Delayed: {what}", body)
    if kind == "order_delivered":
        return NoticeText(f"Delivered: {what}", f"{what.capitalize()} has been delivered.")
    if kind == "supply_low":
        level = f"{data.get('level', 0):g} {data.get('unit', '')}".strip()
        return NoticeText(
            f"Running low: {data.get('device') or 'a device'}",
            f"{str(data.get('slot') or 'The supply').replace('_', ' ').capitalize()} is down to "
            f"{level}. This device only alerts you: order when you are ready.",
        )
    if kind == "link_attempted":
        return NoticeText(
            "Someone tried to link your device",
            f"Another account tried to link your {data.get('device') or 'device'} on "
            f"{_time(data.get('at'))}. It was refused: the device is still yours only. If you "
            "gave the device away, unlink it first.",
        )
    if kind == "voice_locked":
        return NoticeText(
            "Voice purchases locked",
            f"After several wrong voice PINs, voice purchases are locked until "
            f"{_time(data.get('until'))}. If that wasn't you, set a new PIN.",
        )
    raise ValueError(f"unknown notice kind {kind!r}")


def retry_after(attempts: int) -> int | None:
    """Minutes to wait after `attempts` failed sends; None: give up."""
    return RETRY_MINUTES[attempts - 1] if 1 <= attempts <= len(RETRY_MINUTES) else None


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    if isinstance(value, str) and value:
        try:
            return f"{datetime.fromisoformat(value.replace('Z', '+00:00')):%Y-%m-%d %H:%M} UTC"
        except ValueError:
            return value
    return ""
