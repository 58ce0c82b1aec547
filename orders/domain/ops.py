"""What operators see of the work in hand: its request id, and counts through a meter port.

Pure and importable by every package: the use cases and the adapters count through `count`
and `observe`, and the composition root plugs a meter in (`restock.metrics`, Prometheus).
Without one, counting is a call that does nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

# The request being served (HTTP or CoAP): set by the adapter that received it, put on every
# log line by the composition root's logging filter, and written into the outbox rows it causes.
REQUEST_ID: ContextVar[str | None] = ContextVar("restock_request_id", default=None)

# Metric names; restock.metrics gives each its Prometheus type, labels and help text.
COAP_REQUESTS = "coap_requests"  # labels: resource, code
COAP_SECONDS = "coap_request_seconds"  # labels: resource
PRESSES = "presses"  # labels: result
ORDERS_PLACED = "orders_placed"  # labels: channel
REFUSALS = "refusals"  # labels: reason
PRESS_BATCH_SIZE = "press_batch_size"
PRESS_BATCH_SECONDS = "press_batch_seconds"
TOKEN_CHECKS = "token_checks"  # labels: result
RATE_LIMITED = "rate_limited"  # labels: where
WEBHOOK_DELIVERIES = "webhook_deliveries"  # labels: outcome
OUTBOX_LAG = "outbox_lag_seconds"  # the age of the oldest event not yet dispatched
DEDUP_ENTRIES = "dedup_entries"

Labels = tuple[str, ...]


class Meter(Protocol):
    """Where counts and observations go (label values in the metric's declared order)."""

    def count(self, name: str, labels: Labels, amount: float) -> None:
        """Add `amount` to a counter."""

    def observe(self, name: str, value: float, labels: Labels) -> None:
        """Record one value of a histogram."""

    def gauge(self, name: str, value: float, labels: Labels) -> None:
        """Set a gauge."""


class _Silent:
    """The meter before one is plugged in: counts nothing."""

    def count(self, name: str, labels: Labels, amount: float) -> None:
        """Count nothing."""

    def observe(self, name: str, value: float, labels: Labels) -> None:
        """Record nothing."""

    def gauge(self, name: str, value: float, labels: Labels) -> None:
        """Set nothing."""


_meter: list[Meter] = [_Silent()]


def use_meter(meter: Meter | None) -> None:
    """Send every count from now on to `meter` (None: count nothing again)."""
    _meter[0] = meter or _Silent()


def count(name: str, *labels: str, amount: float = 1.0) -> None:
    """Add to the counter `name` (labels in its declared order)."""
    _meter[0].count(name, labels, amount)


def observe(name: str, value: float, *labels: str) -> None:
    """Record a value of the histogram `name`."""
    _meter[0].observe(name, value, labels)


def gauge(name: str, value: float, *labels: str) -> None:
    """Set the gauge `name`."""
    _meter[0].gauge(name, value, labels)


def request_id() -> str | None:
    """The id of the request being served, if any."""
    return REQUEST_ID.get()


def traced(data: dict[str, Any]) -> dict[str, Any]:
    """An outbox event's `data`, with the id of the request that caused it (if in one)."""
    rid = REQUEST_ID.get()
    return data if rid is None else {**data, "request_id": rid}
