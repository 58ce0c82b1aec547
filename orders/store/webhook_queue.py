"""The webhook queue: outbox rows fanned out into deliveries, claimed, and settled.

PostgreSQL: any number of workers. Fanning out takes a transaction-scoped advisory lock
(one worker at a time; the others go on delivering), so an order's events become deliveries
in outbox order. Deliveries are claimed with `FOR UPDATE SKIP LOCKED` and leased: the claim
pushes `next_attempt_at` past the POST's time-out, so a worker killed mid-delivery leaves a
row that comes due again and is retried under the same `webhook-id`.
SQLite: one process; the same statements without the locks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from orders.domain.webhooks import webhook_type
from orders.store.model import OrderEvent, WebhookDelivery, WebhookEndpoint
from orders.store.sql import in_list

# pg_try_advisory_xact_lock key of the fan-out ("rsWH" as an integer).
FANOUT_LOCK = 0x72735748


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker now holds: what to send, where, with which secret."""

    delivery_id: int
    attempt: int
    event_id: int
    event_type: str
    endpoint_id: int
    url: str
    secret: str
    endpoint_failing: bool = False


# Statements built once (building them per pass cost more CPU than running them).
_EVENTS = (
    select(
        OrderEvent.id,
        OrderEvent.store_id,
        OrderEvent.order_id,
        OrderEvent.type,
        OrderEvent.status,
        OrderEvent.data,
        OrderEvent.created_at,
    )
    .where(OrderEvent.published_at.is_(None))
    .order_by(OrderEvent.id)
    .limit(bindparam("limit", type_=Integer))
)
# PostgreSQL: the lock in the same statement (an uncorrelated subquery, evaluated once and
# first), one round trip less than asking for it alone; keyed by schema too, so stores in
# other schemas of the same database fan out on their own.
_FANOUT_LOCK = func.pg_try_advisory_xact_lock(
    cast(FANOUT_LOCK, Integer), func.hashtext(func.current_schema())
)
_EVENTS_LOCKED = _EVENTS.where(select(_FANOUT_LOCK).scalar_subquery())
_STORE_ENDPOINTS = select(
    WebhookEndpoint.id,
    WebhookEndpoint.store_id,
    WebhookEndpoint.events,
    WebhookEndpoint.created_at,
).where(in_list(WebhookEndpoint.store_id, "stores"))
_DELIVERIES = WebhookDelivery.__table__
_EVENT_TABLE = OrderEvent.__table__
_PUBLISH = (
    update(_EVENT_TABLE)  # type: ignore[arg-type]
    .where(in_list(_EVENT_TABLE.c.id, "ids"))
    .values(published_at=bindparam("published"))
)


def fan_out(
    session: Session,
    now: datetime,
    *,
    limit: int = 500,
    on_events: Callable[[Session, Sequence[Any], datetime], object] | None = None,
) -> int:
    """Turn unpublished outbox rows into deliveries for their stores' endpoints; returns how
    many rows were published (0: nothing to do, or another worker is at it).

    `on_events` sees each row once, in the transaction that publishes it (shopper notices).
    """
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    events = conn.execute(_EVENTS_LOCKED if postgres else _EVENTS, {"limit": limit}).all()
    if not events:
        return 0
    stores = sorted({event.store_id for event in events})
    endpoints = conn.execute(_STORE_ENDPOINTS, {"stores": stores}).all()
    by_store: dict[int, list[Any]] = {}
    for endpoint in endpoints:
        by_store.setdefault(endpoint.store_id, []).append(endpoint)
    rows = []
    for event in events:
        kind = webhook_type(event.type, event.status)
        for endpoint in by_store.get(event.store_id, ()):
            if endpoint.events and kind not in endpoint.events:
                continue
            if event.created_at < endpoint.created_at:  # from before it subscribed
                continue
            rows.append(
                {
                    "endpoint_id": endpoint.id,
                    "event_id": event.id,
                    "ordering_key": ordering_key(event.order_id, kind, event.data),
                    "type": kind,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if rows:
        conn.execute(insert(_DELIVERIES), rows)  # type: ignore[arg-type]
    if on_events is not None:
        on_events(session, events, now)
    conn.execute(_PUBLISH, {"ids": [event.id for event in events], "published": now})
    return len(events)


def ordering_key(order_id: str | None, kind: str, data: dict[str, Any] | None) -> str | None:
    """What an event is about, for ordering: its order, else its device or product."""
    if order_id is not None:
        return order_id
    subject = kind.split(".")[0]
    ident = (data or {}).get("id") or (data or {}).get("device_id")
    return None if ident is None else f"{subject}:{ident}"


@cache
def _claim_statement(postgres: bool) -> Any:
    earlier = aliased(WebhookDelivery)
    # A correlated min(), not NOT EXISTS: planners turn NOT EXISTS into an anti join over
    # every pending row (quadratic on PostgreSQL with a backlog); a scalar subquery stays
    # one probe of ix_webhook_deliveries_pending_order per candidate, in `due` order.
    first_pending = (
        select(func.min(earlier.event_id))
        .where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.ordering_key == WebhookDelivery.ordering_key,
            earlier.status == "pending",
        )
        .scalar_subquery()
    )
    enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled)
    due = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= bindparam("now"),
            WebhookDelivery.endpoint_id.in_(enabled),
            or_(WebhookDelivery.ordering_key.is_(None), WebhookDelivery.event_id == first_pending),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if postgres:
        due = due.with_for_update(skip_locked=True)
    # Claimed and leased in one statement (UPDATE … RETURNING; SQLite has it since 3.35).
    return (
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=bindparam("until"))
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.event_id,
            WebhookDelivery.type,
            WebhookDelivery.endpoint_id,
        )
    )


_CLAIMED_ENDPOINTS = select(
    WebhookEndpoint.id,
    WebhookEndpoint.url,
    WebhookEndpoint.secret,
    WebhookEndpoint.failing_since,
).where(in_list(WebhookEndpoint.id, "ids"))


def claim(session: Session, now: datetime, lease: timedelta, *, limit: int) -> list[Claimed]:
    """Take up to `limit` due deliveries of enabled endpoints, each the earliest pending one
    of its order for its endpoint, and lease them until `now + lease`."""
    conn = session.connection()
    statement = _claim_statement(conn.dialect.name == "postgresql")
    taken = conn.execute(statement, {"now": now, "until": now + lease, "limit": limit}).all()
    if not taken:
        return []
    ids = sorted({row.endpoint_id for row in taken})
    endpoints = {row.id: row for row in conn.execute(_CLAIMED_ENDPOINTS, {"ids": ids})}
    return [
        Claimed(
            delivery_id=row.id,
            attempt=row.attempts,
            event_id=row.event_id,
            event_type=row.type,
            endpoint_id=row.endpoint_id,
            url=endpoints[row.endpoint_id].url,
            secret=endpoints[row.endpoint_id].secret,
            endpoint_failing=endpoints[row.endpoint_id].failing_since is not None,
        )
        for row in sorted(taken, key=lambda row: row.id)
    ]


@dataclass(frozen=True)
class Attempt:
    """How one claimed delivery's POST went, and when to retry (None: give up)."""

    claimed: Claimed
    ok: bool
    status_code: int | None
    response: str
    retry_in: timedelta | None


_SETTLE = (
    update(WebhookDelivery.__table__)  # type: ignore[arg-type]
    .where(
        WebhookDelivery.__table__.c.id == bindparam("d_id"),
        # Unless the claim lapsed and another worker took the delivery over: its own
        # attempt decides then.
        WebhookDelivery.__table__.c.attempts == bindparam("d_attempt"),
        WebhookDelivery.__table__.c.status == "pending",
    )
    .values(
        status=bindparam("d_status"),
        next_attempt_at=bindparam("d_next"),
        last_attempt_at=bindparam("d_now"),
        last_status_code=bindparam("d_code"),
        last_response=bindparam("d_response"),
        delivered_at=bindparam("d_delivered"),
    )
)


def settle(
    session: Session, attempts: Sequence[Attempt], now: datetime, disable_after: timedelta
) -> None:
    """Record how attempts went (one statement for the deliveries), and each endpoint's
    health: a success clears its failing streak; a streak past `disable_after` disables it."""
    if not attempts:
        return
    rows = []
    for attempt in attempts:
        if attempt.ok:
            status, next_at, delivered = "delivered", now, now
        elif attempt.retry_in is None:
            status, next_at, delivered = "failed", now, None
        else:
            status, next_at, delivered = "pending", now + attempt.retry_in, None
        rows.append(
            {
                "d_id": attempt.claimed.delivery_id,
                "d_attempt": attempt.claimed.attempt,
                "d_status": status,
                "d_next": next_at,
                "d_now": now,
                "d_code": attempt.status_code,
                "d_response": attempt.response,
                "d_delivered": delivered,
            }
        )
    session.connection().execute(_SETTLE, rows)
    healthy = sorted({a.claimed.endpoint_id for a in attempts if a.ok})
    recovered = sorted(
        {a.claimed.endpoint_id for a in attempts if a.ok and a.claimed.endpoint_failing}
    )
    failing = sorted({a.claimed.endpoint_id for a in attempts if not a.ok} - set(healthy))
    table = WebhookEndpoint
    if recovered:
        session.execute(
            update(table)
            .where(in_list(table.id, "ids"), table.failing_since.is_not(None))
            .values(failing_since=None),
            {"ids": recovered},
        )
    if failing:
        session.execute(
            update(table)
            .where(in_list(table.id, "ids"), table.failing_since.is_(None))
            .values(failing_since=now),
            {"ids": failing},
        )
        for endpoint in session.scalars(
            select(table).where(
                in_list(table.id, "ids"),
                table.enabled,
                table.failing_since <= now - disable_after,
            ),
            {"ids": failing},
        ):
            since = endpoint.failing_since or now
            endpoint.enabled = False
            endpoint.disabled_reason = (
                f"disabled {now:%Y-%m-%d %H:%M} UTC: every delivery failed since "
                f"{since:%Y-%m-%d %H:%M} UTC"
            )


def pending_count(session: Session) -> int:
    """Deliveries not yet delivered nor given up (benchmarks and tests wait on it)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == "pending")
        )
        or 0
    )


def unpublished_count(session: Session) -> int:
    """Outbox rows not yet fanned out."""
    return int(
        session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.published_at.is_(None))
        )
        or 0
    )


def delivery_rows(session: Session, ids: Sequence[int]) -> list[WebhookDelivery]:
    """Deliveries by id."""
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_(ids))))


def outbox_lag(session: Session, now: datetime) -> float:
    """Seconds the dispatcher is behind: the oldest event not yet fanned out, or the longest
    a due delivery of an enabled endpoint has waited (0.0 when nothing waits).

    Deliveries waiting out a retry's backoff, or leased by a worker, are not due: a failing
    receiver is the endpoint's trouble, not the dispatcher's lag.
    """
    enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled)
    oldest_event = (
        select(OrderEvent.created_at)
        .where(OrderEvent.published_at.is_(None))
        .order_by(OrderEvent.id)
        .limit(1)
        .scalar_subquery()
    )
    oldest_due = (
        select(WebhookDelivery.next_attempt_at)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            WebhookDelivery.endpoint_id.in_(enabled),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
        .scalar_subquery()
    )
    row = session.execute(select(oldest_event.label("event"), oldest_due.label("due"))).one()
    moments: list[datetime | None] = [row.event, row.due]
    waits = [(now - moment).total_seconds() for moment in moments if moment is not None]
    return float(max([0.0, *waits]))
