"""Webhooks: endpoints (create, list, change, delete, rotate, test), deliveries, the event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import current_app, url_for
from pydantic import BaseModel, Field
from spectree import Response as Responses

from dashboard.api.base import bp, created, endpoint, store_id
from dashboard.api.schemas import Strict
from dashboard.common import get_db
from orders.domain.webhooks import EVENT_TYPES
from orders.services import webhooks
from orders.services.webhooks import DeliveryView, EndpointView

TAGS = ("webhooks",)
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class NewEndpoint(Strict):
    """An endpoint to create: its URL and, optionally, the only event types it wants."""

    url: str = Field(max_length=2000)
    events: list[EventType] | None = Field(None, description="Empty or absent: every type.")


class EndpointChange(Strict):
    """What to change on an endpoint; `enabled: true` re-enables a disabled one."""

    url: str | None = Field(None, max_length=2000)
    events: list[EventType] | None = None
    enabled: bool | None = None


class Endpoint(BaseModel):
    """A webhook endpoint; `secret` (`whsec_…`) only in the answer that created/rotated it."""

    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created: datetime
    secret: str | None = None


class EndpointList(BaseModel):
    """The store's webhook endpoints, oldest first."""

    endpoints: list[Endpoint]


class Delivery(BaseModel):
    """One event to one endpoint: status, attempts, and the last response (a short prefix)."""

    id: int
    event_id: str
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None
    created: datetime


class DeliveryList(BaseModel):
    """An endpoint's most recent deliveries, newest first."""

    deliveries: list[Delivery]


class Event(BaseModel):
    """An event exactly as delivered: `data` is the resource as the API shows it."""

    id: str
    type: str
    created: datetime
    data: dict[str, Any]


class EventList(BaseModel):
    """Events after the cursor, oldest first; pass `next_after` as `after` for more."""

    events: list[Event]
    next_after: str | None


class EventQuery(BaseModel):
    """Where to start the event feed."""

    after: str | None = Field(None, description="An event id (evt_…); absent: the oldest.")
    limit: int = Field(100, ge=1, le=100)


def _allow_private() -> bool:
    settings = current_app.extensions["restock"].get("settings")
    return bool(getattr(settings, "webhook_allow_private", False))


def _endpoint(view: EndpointView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": view.id,
        "url": view.url,
        "events": list(view.events),
        "enabled": view.enabled,
        "disabled_reason": view.disabled_reason,
        "failing_since": view.failing_since,
        "created": view.created_at,
    }
    if view.secret is not None:
        body["secret"] = view.secret
    return body


def _delivery(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "event_id": webhooks.event_id_text(view.event_id),
        "type": view.type,
        "status": view.status,
        "attempts": view.attempts,
        "next_attempt_at": view.next_attempt_at,
        "last_attempt_at": view.last_attempt_at,
        "last_status_code": view.last_status_code,
        "last_response": view.last_response,
        "created": view.created_at,
    }


@bp.post("/webhook-endpoints")
@endpoint("webhooks:write", json=NewEndpoint, resp=Responses(HTTP_201=Endpoint), tags=TAGS,
          errors=(415,))  # fmt: skip
def create_webhook_endpoint(json: NewEndpoint) -> Any:
    """Subscribe a URL to the store's events; the answer shows the signing secret once."""
    view = webhooks.create_endpoint(
        get_db(), store_id(), json.url, json.events, allow_private=_allow_private()
    )
    location = url_for(".get_webhook_endpoint", endpoint_id=view.id)
    return created(_endpoint(view), location)


@bp.get("/webhook-endpoints")
@endpoint("webhooks:read", resp=Responses(HTTP_200=EndpointList), tags=TAGS)
def list_webhook_endpoints() -> Any:
    """The store's endpoints (without their secrets)."""
    return {"endpoints": [_endpoint(v) for v in webhooks.list_endpoints(get_db(), store_id())]}


@bp.get("/webhook-endpoints/<int:endpoint_id>")
@endpoint("webhooks:read", resp=Responses(HTTP_200=Endpoint), tags=TAGS, errors=(404,))
def get_webhook_endpoint(endpoint_id: int) -> Any:
    """One endpoint (another store's is not found)."""
    return _endpoint(webhooks.get_endpoint(get_db(), store_id(), endpoint_id))


@bp.patch("/webhook-endpoints/<int:endpoint_id>")
@endpoint("webhooks:write", json=EndpointChange, resp=Responses(HTTP_200=Endpoint), tags=TAGS,
          errors=(404, 415))  # fmt: skip
def update_webhook_endpoint(endpoint_id: int, json: EndpointChange) -> Any:
    """Change the URL, the event types, or enable/disable the endpoint."""
    view = webhooks.update_endpoint(
        get_db(), store_id(), endpoint_id, url=json.url, events=json.events,
        enabled=json.enabled, allow_private=_allow_private(),
    )  # fmt: skip
    return _endpoint(view)


@bp.delete("/webhook-endpoints/<int:endpoint_id>")
@endpoint("webhooks:write", resp=Responses("HTTP_204"), tags=TAGS, errors=(404,))
def delete_webhook_endpoint(endpoint_id: int) -> Any:
    """Remove the endpoint and its delivery log."""
    webhooks.delete_endpoint(get_db(), store_id(), endpoint_id)
    return "", 204


@bp.post("/webhook-endpoints/<int:endpoint_id>/rotate-secret")
@endpoint("webhooks:write", resp=Responses(HTTP_200=Endpoint), tags=TAGS, errors=(404,))
def rotate_webhook_secret(endpoint_id: int) -> Any:
    """A new signing secret, shown once; deliveries are signed with it from now on."""
    return _endpoint(webhooks.rotate_secret(get_db(), store_id(), endpoint_id))


@bp.post("/webhook-endpoints/<int:endpoint_id>/test")
@endpoint("webhooks:write", resp=Responses(HTTP_202=Delivery), tags=TAGS, errors=(404,))
def test_webhook_endpoint(endpoint_id: int) -> Any:
    """Queue a `webhook.test` event for this endpoint; its delivery shows how it went."""
    return _delivery(webhooks.send_test_event(get_db(), store_id(), endpoint_id)), 202


@bp.get("/webhook-endpoints/<int:endpoint_id>/deliveries")
@endpoint("webhooks:read", resp=Responses(HTTP_200=DeliveryList), tags=TAGS, errors=(404,))
def list_webhook_deliveries(endpoint_id: int) -> Any:
    """The endpoint's recent deliveries, newest first, with status and last response."""
    rows = webhooks.list_deliveries(get_db(), store_id(), endpoint_id)
    return {"deliveries": [_delivery(row) for row in rows]}


@bp.post("/webhook-endpoints/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
@endpoint("webhooks:write", resp=Responses(HTTP_202=Delivery), tags=TAGS, errors=(404,))
def redeliver_webhook(endpoint_id: int, delivery_id: int) -> Any:
    """Send a delivery again now, under the same `webhook-id`."""
    return _delivery(webhooks.redeliver(get_db(), store_id(), endpoint_id, delivery_id)), 202


@bp.get("/events")
@endpoint("webhooks:read", query=EventQuery, resp=Responses(HTTP_200=EventList), tags=TAGS)
def list_webhook_events(query: EventQuery) -> Any:
    """The store's events after a cursor, oldest first, as they were (or would be) delivered."""
    events, cursor = webhooks.list_events(get_db(), store_id(), after=query.after,
                                          limit=query.limit)  # fmt: skip
    return {"events": events, "next_after": cursor}
