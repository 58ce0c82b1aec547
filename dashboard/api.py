"""`GET /api/v1/orders` (CONTRACT.md REST): the bearer token's owner's orders, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from auth.http import current_principal, problem, require_token
from dashboard.common import get_db
from orders.domain.errors import DomainError
from orders.queries.pages import MAX_LIMIT, orders_page
from orders.store.model import STATUSES

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/orders")
@require_token(get_db, "orders:read")
def orders() -> Any:
    """The token owner's orders, newest first, a page at a time."""
    principal = current_principal()
    owner: dict[str, int | None]
    if principal.kind == "shopper" and None not in (principal.shopper_id, principal.store_id):
        # A shopper token is bound to the store of the client that issued it.
        owner = {"shopper_id": principal.shopper_id, "store_id": principal.store_id}
    elif principal.kind == "merchant" and principal.store_id is not None:
        owner = {"store_id": principal.store_id}
    elif principal.kind == "device" and principal.device_id is not None:
        # A device token reads only what that device ordered for its link's owner: a
        # resold device never shows the previous owner's orders.
        owner = {
            "device_id": principal.device_id,
            "store_id": principal.store_id,
            "shopper_id": principal.shopper_id,
        }
    else:
        return problem(403, "insufficient_scope", "this token owns no orders")
    limit_text = request.args.get("limit", "25")
    status = request.args.get("status") or None
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        return problem(400, "invalid_request", f"limit must be 1 to {MAX_LIMIT}")
    if status is not None and status not in STATUSES:
        return problem(400, "invalid_request", "unknown status")
    page = orders_page(
        get_db(), **owner, status=status, cursor=request.args.get("before"), limit=int(limit_text)
    )
    body: dict[str, Any] = {
        "orders": [order.as_api() for order in page.items],
        "next_before": page.next_cursor,
    }
    response = jsonify(body)
    if page.next_cursor:
        link = url_for(".orders", limit=limit_text, before=page.next_cursor, status=status)
        response.headers["Link"] = f'<{link}>; rel="next"'
    return response


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Response:
    """A domain refusal as problem+json."""
    status = 404 if exc.reason == "not_found" else 400
    return problem(status, "invalid_request" if status == 400 else exc.reason, exc.detail)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Any HTTP error as problem+json, never HTML."""
    code = exc.code or 500
    return problem(code, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
