"""Orders: list (the token owner's), get, ship, deliver, cancel, approve, reject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for
from spectree import Response as Responses

from auth.http import current_principal
from dashboard.api.base import ApiProblem, bp, endpoint, order_ref, store_id
from dashboard.api.schemas import Order, OrderList, OrderQuery, ShipRequest
from dashboard.common import get_db
from orders.domain.actions import Viewer
from orders.queries.pages import orders_page
from orders.queries.resources import order_resource
from orders.services import lifecycle

TAGS = ("orders",)


def utc(moment: datetime | None) -> datetime | None:
    """A query's time in UTC (a time without an offset is read as UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:59-05:00 is past the last UTC datetime
        raise ApiProblem(400, "invalid_request", "that time is out of range") from exc


@bp.get("/orders")
@endpoint("orders:read", query=OrderQuery, resp=Responses(HTTP_200=OrderList), tags=TAGS,
          merchant=False)  # fmt: skip
def list_orders(query: OrderQuery) -> Any:
    """The token owner's orders, newest first: a merchant client's store's, a shopper's own.

    A device token reads only what that device ordered.
    """
    principal = current_principal()
    owner: dict[str, int | None]
    if principal.kind == "merchant" and principal.store_id is not None:
        owner = {"store_id": principal.store_id, "device_id": query.device}
    elif principal.kind == "shopper" and None not in (principal.shopper_id, principal.store_id):
        # A shopper token is bound to the store of the client that issued it.
        owner = {"shopper_id": principal.shopper_id, "store_id": principal.store_id,
                 "device_id": query.device}  # fmt: skip
    elif principal.kind == "device" and principal.device_id is not None:
        # What that device ordered for its link's owner: a resold device never shows the
        # previous owner's orders.
        owner = {"device_id": principal.device_id, "store_id": principal.store_id,
                 "shopper_id": principal.shopper_id}  # fmt: skip
    else:
        raise ApiProblem(403, "insufficient_scope", "this token owns no orders")
    page = orders_page(get_db(), **owner, status=query.status, since=utc(query.since),
                       cursor=query.before, limit=query.limit)  # fmt: skip
    body = {"orders": [order_resource(o) for o in page.items], "next_before": page.next_cursor}
    headers = {}
    if page.next_cursor:
        args = query.model_dump(exclude_none=True, mode="json") | {"before": page.next_cursor}
        headers["Link"] = f'<{url_for(".list_orders", **args)}>; rel="next"'
    return body, 200, headers


@bp.get("/orders/<order_id>")
@endpoint("orders:read", resp=Responses(HTTP_200=Order), tags=TAGS, errors=(404,))
def get_order(order_id: str) -> Any:
    """One of the store's orders (another store's is not found)."""
    return order_resource(
        lifecycle.get_order(get_db(), order_ref(order_id), Viewer.merchant(store_id()))
    )


@bp.post("/orders/<order_id>/ship")
@endpoint("orders:write", json=ShipRequest, resp=Responses(HTTP_200=Order), tags=TAGS,
          errors=(404, 409, 415))  # fmt: skip
def ship_order(order_id: str, json: ShipRequest) -> Any:
    """Ship a placed order with its carrier and tracking number."""
    order = lifecycle.mark_shipped(
        get_db(),
        order_ref(order_id),
        store_id(),
        json.tracking_number,
        carrier=json.carrier,
        tracking_url=json.tracking_url,
    )
    return order_resource(order)


@bp.post("/orders/<order_id>/deliver")
@endpoint("orders:write", resp=Responses(HTTP_200=Order), tags=TAGS, errors=(404, 409))
def deliver_order(order_id: str) -> Any:
    """Record that a shipped order was delivered."""
    return order_resource(lifecycle.mark_delivered(get_db(), order_ref(order_id), store_id()))


@bp.post("/orders/<order_id>/cancel")
@endpoint("orders:write", resp=Responses(HTTP_200=Order), tags=TAGS, errors=(404, 409))
def cancel_order(order_id: str) -> Any:
    """Cancel an order that has not shipped yet; its stock returns."""
    order = lifecycle.cancel_order(get_db(), order_ref(order_id), Viewer.merchant(store_id()))
    return order_resource(order)


@bp.post("/orders/<order_id>/approve")
@endpoint("orders:write", resp=Responses(HTTP_200=Order), tags=TAGS, errors=(404, 409))
def approve_order(order_id: str) -> Any:
    """Approve an order the store holds for review (`approval_by: merchant`); it is placed
    and `order.approved` is sent. An order waiting for its shopper's consent is a 409."""
    return order_resource(lifecycle.approve_as_merchant(get_db(), order_ref(order_id), store_id()))


@bp.post("/orders/<order_id>/reject")
@endpoint("orders:write", resp=Responses(HTTP_200=Order), tags=TAGS, errors=(404, 409))
def reject_order(order_id: str) -> Any:
    """Reject an order the store holds for review; its stock returns and `order.rejected` is
    sent. An order waiting for its shopper's consent is a 409."""
    return order_resource(lifecycle.reject_as_merchant(get_db(), order_ref(order_id), store_id()))
