"""Webhook endpoints a merchant manages, the store's event feed, and the events' bodies."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.webhooks import (
    TEST_EVENT,
    check_event_types,
    check_host,
    check_url,
    webhook_type,
)
from orders.queries.resources import order_resource
from orders.queries.snapshots import OrderView
from orders.services.placing import order_views
from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent, WebhookDelivery, WebhookEndpoint

# Deliveries listed per endpoint (the log is for reading, not an archive).
DELIVERY_LOG_LIMIT = 100
EVENTS_PAGE_LIMIT = 100


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as its merchant sees it (the secret only right after creating/rotating)."""

    id: int
    url: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    secret: str | None = None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, *, with_secret: bool = False) -> EndpointView:
        """Snapshot a row."""
        return cls(
            endpoint.id,
            endpoint.url,
            tuple(endpoint.events or ()),
            endpoint.enabled,
            endpoint.disabled_reason,
            endpoint.failing_since,
            endpoint.created_at,
            endpoint.secret if with_secret else None,
        )


@dataclass(frozen=True)
class DeliveryView:
    """One event to one endpoint, as the delivery log shows it."""

    id: int
    endpoint_id: int
    event_id: int
    type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryView:
        """Snapshot a row."""
        return cls(
            row.id,
            row.endpoint_id,
            row.event_id,
            row.type,
            row.status,
            row.attempts,
            row.next_attempt_at if row.status == "pending" else None,
            row.last_attempt_at,
            row.last_status_code,
            row.last_response,
            row.created_at,
        )


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def event_id_text(event_id: int) -> str:
    """The stable public id of an outbox row (`id` of the event, `webhook-id` of its POSTs)."""
    return f"evt_{event_id}"


def parse_event_id(text: str) -> int:
    """The outbox row id in `evt_N` (a cursor); InvalidRequest otherwise."""
    digits = text.removeprefix("evt_")
    if not digits.isdigit() or len(digits) > 18:
        raise InvalidRequest("invalid_cursor", "a cursor is an event id such as evt_42")
    return int(digits)


def _check(url: str, events: Sequence[str] | None, allow_private: bool) -> tuple[str, list[str]]:
    url = check_url(url)
    check_host(urlsplit(url).hostname or "", allow_private=allow_private)
    return url, check_event_types(list(events or ()))


def create_endpoint(
    db: Database,
    store_id: int,
    url: str,
    events: Sequence[str] | None = None,
    *,
    allow_private: bool = False,
) -> EndpointView:
    """Subscribe `url` to the store's events (all of them when `events` is empty)."""
    url, wanted = _check(url, events, allow_private)
    with db.write() as session:
        endpoint = WebhookEndpoint(store_id=store_id, url=url, events=wanted, secret=new_secret())
        session.add(endpoint)
        session.flush()
        return EndpointView.of(endpoint, with_secret=True)


def list_endpoints(db: Database, store_id: int) -> list[EndpointView]:
    """The store's endpoints, oldest first."""
    with db.read() as session:
        rows = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.store_id == store_id)
            .order_by(WebhookEndpoint.id)
        )
        return [EndpointView.of(row) for row in rows]


def get_endpoint(db: Database, store_id: int, endpoint_id: int) -> EndpointView:
    """One of the store's endpoints."""
    with db.read() as session:
        return EndpointView.of(_endpoint(session, store_id, endpoint_id))


def update_endpoint(
    db: Database,
    store_id: int,
    endpoint_id: int,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> EndpointView:
    """Change an endpoint's URL, types or state; enabling it again clears its notice."""
    checked_url, wanted = _check(url, events, allow_private) if url is not None else (None, None)
    if url is None and events is not None:
        wanted = check_event_types(list(events))
    with db.write() as session:
        endpoint = _endpoint(session, store_id, endpoint_id, lock=True)
        if checked_url is not None:
            endpoint.url = checked_url
        if events is not None and wanted is not None:
            endpoint.events = wanted
        if enabled is not None:
            endpoint.enabled = enabled
            if enabled:
                endpoint.disabled_reason = None
                endpoint.failing_since = None
        session.flush()
        return EndpointView.of(endpoint)


def delete_endpoint(db: Database, store_id: int, endpoint_id: int) -> None:
    """Remove an endpoint and its delivery log."""
    with db.write() as session:
        session.delete(_endpoint(session, store_id, endpoint_id, lock=True))


def rotate_secret(db: Database, store_id: int, endpoint_id: int) -> EndpointView:
    """A new signing secret, shown once; the old one signs nothing from now on."""
    with db.write() as session:
        endpoint = _endpoint(session, store_id, endpoint_id, lock=True)
        endpoint.secret = new_secret()
        session.flush()
        return EndpointView.of(endpoint, with_secret=True)


def send_test_event(db: Database, store_id: int, endpoint_id: int) -> DeliveryView:
    """Queue a `webhook.test` event for this one endpoint (the dispatcher sends it)."""
    now = utcnow()
    with db.write() as session:
        endpoint = _endpoint(session, store_id, endpoint_id)
        event = OrderEvent(
            order_id=None,
            store_id=store_id,
            type=TEST_EVENT,
            status="",
            data={"endpoint_id": endpoint.id},
            created_at=now,
            published_at=now,  # not fanned out: it is for this endpoint only
        )
        session.add(event)
        session.flush()
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event.id,
            type=TEST_EVENT,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        return DeliveryView.of(delivery)


def list_deliveries(
    db: Database, store_id: int, endpoint_id: int, *, limit: int = DELIVERY_LOG_LIMIT
) -> list[DeliveryView]:
    """An endpoint's most recent deliveries, newest first."""
    with db.read() as session:
        _endpoint(session, store_id, endpoint_id)
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(max(1, min(limit, DELIVERY_LOG_LIMIT)))
        )
        return [DeliveryView.of(row) for row in rows]


def redeliver(db: Database, store_id: int, endpoint_id: int, delivery_id: int) -> DeliveryView:
    """Send a delivery again now (same event, same `webhook-id`), whatever its state."""
    with db.write() as session:
        _endpoint(session, store_id, endpoint_id)
        delivery = session.scalar(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
            .with_for_update()
        )
        if delivery is None:
            raise NotFound("not_found", "no such delivery")
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        delivery.delivered_at = None
        session.flush()
        return DeliveryView.of(delivery)


def list_events(
    db: Database, store_id: int, *, after: str | None = None, limit: int = EVENTS_PAGE_LIMIT
) -> tuple[list[dict[str, Any]], str | None]:
    """The store's events after the cursor `after` (an event id), oldest first, as sent;
    and the cursor to pass next (None: nothing newer yet)."""
    since = parse_event_id(after) if after else 0
    limit = max(1, min(limit, EVENTS_PAGE_LIMIT))
    with db.read() as session:
        rows = list(
            session.scalars(
                select(OrderEvent)
                .where(
                    OrderEvent.store_id == store_id,
                    OrderEvent.id > since,
                    OrderEvent.type != TEST_EVENT,
                )
                .order_by(OrderEvent.id)
                .limit(limit)
            )
        )
        bodies = event_bodies(session, rows)
    events = [bodies[row.id] for row in rows]
    cursor = events[-1]["id"] if events else after
    return events, cursor


# What an event's body is built from (`event_bodies` takes rows of these, or OrderEvents).
EVENT_COLUMNS = (
    OrderEvent.id,
    OrderEvent.order_id,
    OrderEvent.type,
    OrderEvent.status,
    OrderEvent.data,
    OrderEvent.created_at,
)


class EventRow(Protocol):
    """An outbox row, as far as its body needs it."""

    @property
    def id(self) -> int: ...
    @property
    def order_id(self) -> str | None: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def data(self) -> dict[str, Any] | None: ...
    @property
    def created_at(self) -> datetime: ...


def event_bodies(session: Session, rows: Sequence[EventRow]) -> dict[int, dict[str, Any]]:
    """Each outbox row's event body `{id, type, created, data}` (and `test: true` for a test
    order's events), by row id.

    An order's `data` is built now from the order row, with the status the event recorded:
    the press batch writes its rows in one statement and builds no JSON per press.
    """
    order_ids = sorted({row.order_id for row in rows if row.order_id is not None})
    # Orders and their lines in one joined query.
    orders = order_views(session.connection(), order_ids) if order_ids else {}
    bodies = {}
    for row in rows:
        kind = webhook_type(row.type, row.status)
        data: dict[str, Any]
        test = False
        if row.order_id is not None and row.order_id in orders:
            data = order_data(orders[row.order_id], row.status)
            test = orders[row.order_id].test
        elif kind == TEST_EVENT:
            data = {"message": "a test event sent on request"}
        else:
            data = dict(row.data or {})
        body: dict[str, Any] = {
            "id": event_id_text(row.id),
            "type": kind,
            "created": _iso(row.created_at),
            "data": data,
        }
        if test:  # a merchant's systems tell a test order at a glance, before reading data
            body["test"] = True
        bodies[row.id] = body
    return bodies


def order_data(order: OrderView, status: str) -> dict[str, Any]:
    """The order as the API shows it, at the status the event recorded."""
    return order_resource(replace(order, status=status))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _endpoint(
    session: Session, store_id: int, endpoint_id: int, *, lock: bool = False
) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.store_id == store_id
    )
    endpoint = session.scalar(query.with_for_update() if lock else query)
    if endpoint is None:  # another store's endpoint is indistinguishable from a missing one
        raise NotFound("not_found", "no such webhook endpoint")
    return endpoint
