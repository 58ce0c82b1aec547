"""Carrier tracking: a merchant's systems post the carrier's scans of a shipped order."""

from __future__ import annotations

from typing import Any

from spectree import Response as Responses

from dashboard.api.base import bp, endpoint, store_id
from dashboard.api.schemas import TrackingEventRequest, TrackingEventResult
from dashboard.common import get_db
from orders.queries.resources import order_resource
from orders.services.tracking import record_tracking_event

TAGS = ("orders",)


@bp.post("/orders/<order_id>/tracking-events")
@endpoint("orders:write", json=TrackingEventRequest, resp=Responses(HTTP_200=TrackingEventResult),
          tags=TAGS, errors=(404, 409, 415))  # fmt: skip
def post_tracking_event(order_id: str, json: TrackingEventRequest) -> Any:
    """Record a carrier scan: `delivered` delivers; a later estimate emits `order.delayed`.

    Idempotent on the scan's `id`: the same id again changes nothing and says `duplicate`.
    """
    result = record_tracking_event(
        get_db(),
        store_id=store_id(),
        order_id=order_id,
        external_id=json.id,
        status=json.status,
        occurred_at=json.occurred_at,
        estimated_delivery=json.estimated_delivery,
        carrier=json.carrier,
        tracking_number=json.tracking_number,
        description=json.description,
        source="api",
    )
    expected = result.order.expected_on
    return {
        "order": order_resource(result.order),
        "expected_delivery": expected.isoformat() if expected else None,
        "delay_reason": result.order.delay_reason,
        "duplicate": result.duplicate,
        "delayed": result.delayed,
    }
