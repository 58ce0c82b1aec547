"""Carrier tracking: record a carrier's scan of a shipped order and let it move the order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.tracking import (
    MAX_TEXT,
    TRACKABLE,
    CarrierStatus,
    TrackingFacts,
    apply_tracking,
    check_carrier_status,
)
from orders.queries.quotes import expected_arrival
from orders.queries.snapshots import OrderView
from orders.services.ordering import UNIQUE_RACES
from orders.store.db import Database, utcnow
from orders.store.model import Order, Store, TrackingEvent
from orders.store.outbox import record_event

SOURCES = ("api", "easypost")
# A carrier clock a little ahead is normal; a scan days ahead would freeze the expected day.
MAX_CLOCK_AHEAD = timedelta(hours=24)


@dataclass(frozen=True)
class CarrierScan:
    """One carrier event as an adapter parsed it (the carrier's words already mapped)."""

    external_id: str
    status: CarrierStatus
    occurred_at: datetime
    estimated_delivery: datetime | date | None = None
    description: str | None = None


@dataclass(frozen=True)
class TrackingResult:
    """What recording did: the order now, whether the scan was new, and whether it slipped."""

    order: OrderView
    duplicate: bool
    delayed: bool


def record_tracking_event(
    db: Database,
    *,
    store_id: int,
    order_id: str,
    external_id: str,
    status: object,
    occurred_at: datetime,
    estimated_delivery: datetime | date | None = None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    description: str | None = None,
    source: str = "api",
    now: datetime | None = None,
) -> TrackingResult:
    """Record one scan of a store's shipped order: delivered moves it, a later day delays it.

    Idempotent on (order, source, external_id): a replay answers the order as it is and
    changes nothing. Another store's order is NotFound, like a missing one.
    """
    moment = now or utcnow()
    scan = _checked(external_id, status, occurred_at, estimated_delivery, description, moment)
    _check_source(source)

    def work(session: Session) -> TrackingResult:
        order = _locked_order(session, select(Order).where(Order.id == order_id), store_id)
        _note_carrier(order, carrier, tracking_number)
        return _apply(session, order, scan, source, carrier, moment)

    return db.run_write(work, races=UNIQUE_RACES)


def record_carrier_update(
    db: Database,
    *,
    store_id: int,
    tracking_number: str,
    scans: Sequence[CarrierScan],
    carrier: str | None,
    source: str,
    now: datetime | None = None,
) -> TrackingResult:
    """An aggregator's update of one tracker: its scans, oldest first, on the order it tracks.

    The order is the store's newest shipped (or delivered) order with that tracking number.
    """
    moment = now or utcnow()
    _check_source(source)
    checked = sorted(
        (
            _checked(s.external_id, s.status, s.occurred_at, s.estimated_delivery,
                     s.description, moment)
            for s in scans
        ),
        key=lambda s: s.occurred_at,
    )  # fmt: skip
    if not checked:
        raise InvalidRequest("no_events", "the update carries no tracking events")

    def work(session: Session) -> TrackingResult:
        query = (
            select(Order)
            # The dashboard's ship form records the number as the tracking reference.
            .where(
                Order.tracking_ref == tracking_number,
                Order.status.in_(TRACKABLE),
            )
            .order_by(Order.created_at.desc())
            .limit(1)
        )
        order = _locked_order(session, query, store_id)
        _note_carrier(order, carrier, None)
        results = [_apply(session, order, scan, source, carrier, moment) for scan in checked]
        return TrackingResult(
            results[-1].order,
            duplicate=all(r.duplicate for r in results),
            delayed=any(r.delayed for r in results),
        )

    return db.run_write(work, races=UNIQUE_RACES)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown tracking source {source!r}")


def _checked(
    external_id: str,
    status: object,
    occurred_at: datetime,
    estimated: datetime | date | None,
    description: str | None,
    now: datetime,
) -> CarrierScan:
    """The scan if every field is acceptable, else InvalidRequest (nothing is written)."""
    if not isinstance(external_id, str) or not 0 < len(external_id.strip()) <= MAX_TEXT:
        raise InvalidRequest("bad_event_id", f"an event id is 1 to {MAX_TEXT} characters")
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise InvalidRequest("bad_time", "occurred_at must be a time with a zone")
    if occurred_at > now + MAX_CLOCK_AHEAD:
        raise InvalidRequest("bad_time", "occurred_at is in the future")
    if isinstance(estimated, datetime) and estimated.tzinfo is None:
        raise InvalidRequest("bad_time", "estimated_delivery must be a date or a time with a zone")
    text = description.strip()[:MAX_TEXT] if isinstance(description, str) else None
    return CarrierScan(
        external_id.strip(), check_carrier_status(status), occurred_at, estimated, text or None
    )


def _locked_order(session: Session, query: Select[Order], store_id: int) -> Order:
    order = session.scalar(
        query.where(Order.store_id == store_id).options(selectinload(Order.lines)).with_for_update()
    )
    if order is None:
        # Another store's order is indistinguishable from a missing one.
        raise NotFound("not_found", "no such order")
    return order


def _note_carrier(order: Order, carrier: str | None, tracking_number: str | None) -> None:
    # The first carrier named sticks: a scan cannot re-label what the merchant shipped with.
    if carrier and order.carrier is None:
        order.carrier = carrier.strip()[:100] or None
    if tracking_number and order.tracking_ref is None:
        order.tracking_ref = tracking_number.strip()[:MAX_TEXT] or None


def _as_time(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), tzinfo=UTC)


def expected_day(order: Order, lead_time_days: float) -> date:
    """The day the order is expected: the carrier's latest estimate, or the store's promise."""
    if order.expected_delivery_at is not None:
        return order.expected_delivery_at.date()
    return expected_arrival(order.created_at, lead_time_days)


def _apply(
    session: Session,
    order: Order,
    scan: CarrierScan,
    source: str,
    carrier: str | None,
    now: datetime,
) -> TrackingResult:
    seen = session.scalar(
        select(TrackingEvent.id).where(
            TrackingEvent.order_id == order.id,
            TrackingEvent.source == source,
            TrackingEvent.external_id == scan.external_id,
        )
    )
    if seen is not None:
        return TrackingResult(OrderView.of(order), duplicate=True, delayed=False)
    latest = session.scalar(
        select(func.max(TrackingEvent.occurred_at)).where(TrackingEvent.order_id == order.id)
    )
    lead_time = session.scalar(select(Store.lead_time_days).where(Store.id == order.store_id))
    estimate = _as_time(scan.estimated_delivery)
    facts = TrackingFacts(order.status, expected_day(order, lead_time or 0.0), latest)
    outcome = apply_tracking(
        facts,
        scan.status,
        scan.occurred_at,
        estimate.date() if estimate else None,
        scan.description,
    )
    session.add(
        TrackingEvent(
            order_id=order.id,
            store_id=order.store_id,
            source=source,
            external_id=scan.external_id,
            status=scan.status,
            occurred_at=scan.occurred_at,
            estimated_delivery_at=estimate,
            description=scan.description,
            carrier=(carrier or order.carrier or "").strip()[:100] or None,
            created_at=now,
        )
    )
    changed = False
    if outcome.expected_on is not None and estimate is not None:
        order.expected_delivery_at = estimate
        changed = True
    if outcome.delayed:
        order.delay_reason = outcome.reason
        changed = True
    if outcome.new_status == "delivered":
        order.status = "delivered"
        order.delivered_at = min(scan.occurred_at, now)
        changed = True
    if changed:
        order.updated_at = now
    session.flush()
    if outcome.new_status is not None:
        record_event(session, order, f"order.{outcome.new_status}", now)
    if outcome.delayed:
        record_event(session, order, "order.delayed", now)
    return TrackingResult(OrderView.of(order), duplicate=False, delayed=outcome.delayed)
