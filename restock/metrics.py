"""Prometheus metrics: the meter plugged into `orders.domain.ops`, and what `/metrics` serves.

One process (`run`) counts in memory, in a registry of Restock's metrics alone. Several processes
(gunicorn's workers, `hub` processes beside them) count into files under
`PROMETHEUS_MULTIPROC_DIR`, and `/metrics` adds them up; every role on a host points at the
same directory, emptied before they start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from orders.domain import ops

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Latency buckets (seconds): a press or a page is milliseconds; a slow commit shows at 1-10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Spec:
    """One metric: its Prometheus kind, help text, labels (and buckets of a histogram)."""

    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    # How a gauge of several processes adds up (prometheus_client's multiprocess_mode).
    mode: str = "livesum"


# Every metric Restock exports, under `restock_` (the names of orders.domain.ops and ours).
SPECS: dict[str, Spec] = {
    "http_requests": Spec(
        "counter", "HTTP requests by route, method, code", ("route", "method", "code")
    ),
    "http_request_seconds": Spec("histogram", "HTTP request latency by route", ("route",)),
    ops.COAP_REQUESTS: Spec("counter", "CoAP requests by resource, code", ("resource", "code")),
    ops.COAP_SECONDS: Spec("histogram", "CoAP request latency by resource", ("resource",)),
    ops.PRESSES: Spec("counter", "Presses by result (placed, duplicate, refused, …)", ("result",)),
    ops.ORDERS_PLACED: Spec("counter", "Orders placed by channel", ("channel",)),
    ops.REFUSALS: Spec("counter", "Orders refused by reason", ("reason",)),
    ops.PRESS_BATCH_SIZE: Spec("histogram", "Presses per group-committed batch", (), BATCH_BUCKETS),
    ops.PRESS_BATCH_SECONDS: Spec("histogram", "Time a press batch takes, reads to COMMIT"),
    ops.TOKEN_CHECKS: Spec("counter", "Bearer token checks by result", ("result",)),
    ops.RATE_LIMITED: Spec("counter", "Requests refused by a rate limit, by where", ("where",)),
    ops.WEBHOOK_DELIVERIES: Spec("counter", "Webhook deliveries by outcome", ("outcome",)),
    # Every worker measures the same queue: the worst of them, not their sum.
    ops.OUTBOX_LAG: Spec(
        "gauge", "Seconds the oldest outbox event or due delivery has waited", mode="livemax"
    ),
    ops.DEDUP_ENTRIES: Spec("gauge", "Entries in the CoAP hub's duplicate-detection memory"),
    "db_pool_in_use": Spec("gauge", "Database connections checked out of the pool"),
    "db_pool_size": Spec("gauge", "Database connections the pool holds open"),
}


def _make(name: str, spec: Spec, registry: Any) -> Any:
    # Imported here: prometheus_client picks single- or multi-process values at import time,
    # from PROMETHEUS_MULTIPROC_DIR, which the `web` role sets before anything imports it.
    from prometheus_client import Counter, Gauge, Histogram

    full = f"restock_{name}"
    if spec.kind == "counter":
        return Counter(full, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(full, spec.help, spec.labels, buckets=spec.buckets, registry=registry)
    # Gauges of live processes only: a pool or a memory per process.
    return Gauge(full, spec.help, spec.labels, multiprocess_mode=spec.mode, registry=registry)


class PrometheusMeter:
    """The ops meter on prometheus_client metrics, created once per process."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        # Our own registry, not the default one: that one adds process_ and python_ metrics,
        # and every name /metrics serves starts with restock_ (CONTRACT.md).
        self.registry = CollectorRegistry()
        self.metrics = {name: _make(name, spec, self.registry) for name, spec in SPECS.items()}
        self._children: dict[tuple[str, ops.Labels], Any] = {}

    def _child(self, name: str, labels: ops.Labels) -> Any:
        # .labels() parses and validates on every call; the bound child is cached per label set.
        key = (name, labels)
        child = self._children.get(key)
        if child is None:
            metric = self.metrics[name]
            child = metric.labels(*labels) if labels else metric
            self._children[key] = child
        return child

    def count(self, name: str, labels: ops.Labels, amount: float) -> None:
        """Add to a counter."""
        self._child(name, labels).inc(amount)

    def observe(self, name: str, value: float, labels: ops.Labels) -> None:
        """Record a histogram value."""
        self._child(name, labels).observe(value)

    def gauge(self, name: str, value: float, labels: ops.Labels) -> None:
        """Set a gauge."""
        self._child(name, labels).set(value)


_installed: list[PrometheusMeter] = []


def install() -> PrometheusMeter:
    """Create the metrics (once per process) and send every ops count to them."""
    if not _installed:
        _installed.append(PrometheusMeter())
    ops.use_meter(_installed[0])
    return _installed[0]


def multiprocess_dir() -> Path | None:
    """The directory processes share their counts through, if one is configured."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges (gunicorn's child_exit, a hub at exit)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def exposition() -> tuple[bytes, str]:
    """The text `/metrics` serves, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if multiprocess_dir() is None:
        return generate_latest(install().registry), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def watch_pool(engine: Engine) -> None:
    """Keep the pool gauges current from SQLAlchemy's checkout and checkin events."""

    def on_event(*_args: Any) -> None:
        pool = engine.pool
        # QueuePool counts for us; SQLite's in-memory pools (tests) have no counts.
        if hasattr(pool, "checkedout") and hasattr(pool, "size"):
            ops.gauge("db_pool_in_use", float(pool.checkedout()))
            ops.gauge("db_pool_size", float(pool.size()))

    event.listen(engine, "checkout", on_event)
    event.listen(engine, "checkin", on_event)
