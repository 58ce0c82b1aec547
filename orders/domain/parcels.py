"""When a shipped parcel counts as late, and when as lost (pure rules, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ParcelState = Literal["on_time", "late", "lost"]

# Carrier words that end a parcel's journey without a delivery.
LOST_CARRIER_STATUSES = frozenset({"lost", "returned"})
# Fewer observed deliveries than this say too little about the tail: the promise stands in.
MIN_OBSERVED = 5
LOST_QUANTILE = 0.95


def lead_time_quantile(observed_days: Sequence[float], q: float, fallback_days: float) -> float:
    """The q-quantile (nearest rank) of observed lead times in days; `fallback_days` if few."""
    seen = sorted(x for x in observed_days if math.isfinite(x) and x >= 0.0)
    if len(seen) < MIN_OBSERVED:
        return max(fallback_days, 0.0)
    rank = min(max(math.ceil(q * len(seen)) - 1, 0), len(seen) - 1)
    return seen[rank]


@dataclass(frozen=True)
class ParcelFacts:
    """What the rule needs about one shipped order."""

    expected_at: datetime  # end of the day promised or last estimated by the carrier
    now: datetime
    observed_lead_days: Sequence[float]  # the store's placed->delivered durations
    promised_lead_days: float  # the store's promise, used while the store has little history
    carrier_status: str | None = None


@dataclass(frozen=True)
class ParcelVerdict:
    """On time, late or lost; when it becomes lost; and whose word said so."""

    state: ParcelState
    lost_after: datetime
    by: Literal["carrier", "store"] | None  # who declared it lost


def parcel_state(facts: ParcelFacts) -> ParcelVerdict:
    """Late once past the expected day; lost once the store's p95 lead time past it, or on the
    carrier's word.

    The p95 is counted past the expected day, so a carrier that moves the day later moves the
    point of loss with it.
    """
    tail = lead_time_quantile(
        facts.observed_lead_days, LOST_QUANTILE, fallback_days=facts.promised_lead_days
    )
    lost_after = facts.expected_at + timedelta(days=tail)
    if facts.carrier_status in LOST_CARRIER_STATUSES:
        return ParcelVerdict("lost", lost_after, "carrier")
    if facts.now > lost_after:
        return ParcelVerdict("lost", lost_after, "store")
    if facts.now > facts.expected_at:
        return ParcelVerdict("late", lost_after, None)
    return ParcelVerdict("on_time", lost_after, None)


@dataclass(frozen=True)
class ReplacementFacts:
    """What deciding a replacement for a lost or late parcel needs."""

    state: ParcelState
    opted_in: bool  # the link reorders late parcels by itself
    already_replaced: bool  # this order already has its one replacement
    late_days: float  # days past the expected day
    late_reorder_days: float | None  # the link's "order again after N days late"


def replacement(facts: ReplacementFacts) -> Literal["automatic", "offer", "none"]:
    """Replace automatically (opt-in), offer the shopper a one-tap reorder, or nothing.

    At most one replacement per order; the replacement is the smallest pack, and caps,
    approval and stock apply as to any order.
    """
    if facts.state == "on_time" or facts.already_replaced:
        return "none"
    due = facts.state == "lost" or (
        facts.late_reorder_days is not None and facts.late_days > facts.late_reorder_days
    )
    if facts.opted_in and due:
        return "automatic"
    return "offer"
