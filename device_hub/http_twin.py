"""The device HTTP twin (CONTRACT.md): /press, /telemetry, /orders over HTTPS for Wi-Fi devices.

The same services, result words and error words as the CoAP resources; errors are RFC 9457
problem+json. The token travels in `Authorization: Bearer`, not in the payload.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiocoap.numbers.codes import Code
from aiocoap.numbers.contentformat import ContentFormat
from flask import Blueprint, Response, current_app, jsonify, request
from flask_limiter import Limiter

from auth.http import bearer_token, problem
from auth.limits import client_address
from auth.principal import InvalidToken, Principal
from auth.tokens import token_hash, verify_access_token
from device_hub.codec import JSON, PayloadError, decode, decode_json_text
from device_hub.errors import error_answer
from device_hub.identity import MUST_USE_OSCORE
from orders.domain.errors import NotFound
from orders.services.lifecycle import Actor, cancel_order, get_order_status, status_body
from orders.services.ordering import press
from orders.services.telemetry import Policy, link_policy, record_telemetry
from orders.store.db import Database

CONFIG_KEY = "RESTOCK_DEVICE_HTTP_LIMITS"
PRESS_MAX_PAYLOAD = 1024  # as over CoAP: a press is a tiny map
TELEMETRY_MAX_PAYLOAD = 16 * 1024  # as over CoAP: a 256-record pack fits
SENML_JSON = "application/senml+json"
_JSON_TYPES = (SENML_JSON, "application/json")
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class DeviceLimits:
    """Limit strings (Flask-Limiter syntax), read per request from app.config[CONFIG_KEY]."""

    def __init__(self, device: str = "120 per minute", address: str = "1200 per minute") -> None:
        # A button presses a few times a minute; one home (one NAT address) holds many devices.
        self.device = device
        self.address = address


def _limits() -> DeviceLimits:
    value = current_app.config.get(CONFIG_KEY)
    return value if isinstance(value, DeviceLimits) else DeviceLimits()


def _device_key() -> str:
    # Keyed by the token's digest, before the token is checked: a flood of bad tokens from
    # many addresses costs each its own bucket, and the address limit caps the spray.
    token = bearer_token()
    return "device:" + (token_hash(token) if token else "none:" + client_address())


def _address_key() -> str:
    return "addr:" + client_address()


def make_twin_blueprint(db: Database, limiter: Limiter, policy: Policy = link_policy) -> Blueprint:
    """The /api/v1/device/* endpoints over `db`, rate limited through the app's `limiter`."""
    bp = Blueprint("device_http", __name__, url_prefix="/api/v1/device")

    def limited(view: Callable[..., Any]) -> Callable[..., Any]:
        # Shared limits: one budget per device (and per address) across all three endpoints;
        # a plain limiter.limit() would count each endpoint separately.
        by_device = limiter.shared_limit(
            lambda: _limits().device, scope="device-http-device", key_func=_device_key
        )
        by_address = limiter.shared_limit(
            lambda: _limits().address, scope="device-http-address", key_func=_address_key
        )
        return by_address(by_device(view))

    def device(scope: str) -> Principal:
        """The device behind the bearer token, or InvalidToken (401, as CoAP's 4.01)."""
        token = bearer_token()
        if token is None:
            raise InvalidToken("invalid_token", "a bearer token is required")
        principal = verify_access_token(db, token, scope)
        if principal.kind != "device" or principal.device_id is None:
            raise InvalidToken("invalid_token", "not a device token")
        if principal.oscore:  # a proof-of-possession token works only under its OSCORE context
            raise InvalidToken("invalid_token", MUST_USE_OSCORE)
        return principal

    @bp.post("/press")
    @limited
    def press_view() -> Response:
        try:
            principal = device("orders:place")
            body = decode(_body(PRESS_MAX_PAYLOAD), _json_format())
            assert principal.device_id is not None
            result = press(db, principal.device_id, body.get("seq"), boot=body.get("boot", ""))  # type: ignore[arg-type]
        except Exception as exc:
            return _error(exc)
        return _json({"result": result.outcome, "order": result.order.summary()}, 201)

    @bp.post("/telemetry")
    @limited
    def telemetry_view() -> Response:
        try:
            principal = device("devices:telemetry")
            _json_format()
            records = decode_json_text(_body(TELEMETRY_MAX_PAYLOAD))
            assert principal.device_id is not None
            result = record_telemetry(db, principal.device_id, records, policy=policy)
        except Exception as exc:
            return _error(exc)
        answer: dict[str, Any] = {"accepted": result.accepted, "action": result.action}
        if result.order is not None:
            answer["order"] = result.order.summary()
        if result.refused is not None:
            answer["reason"] = result.refused
        return _json(answer, 200)

    @bp.get("/orders/<order_id>")
    @limited
    def order_view(order_id: str) -> Response:
        try:
            principal = device("orders:read")
            if not _ORDER_ID.match(order_id):
                raise NotFound("not_found", "no such order")
            order = get_order_status(db, order_id)
            # Only this device's orders for its link's owner: another store's, another
            # device's or a previous owner's order is indistinguishable from a missing one.
            mine = (order.store_id, order.device_id, order.shopper_id)
            if mine != (principal.store_id, principal.device_id, principal.shopper_id):
                raise NotFound("not_found", "no such order")
        except Exception as exc:
            return _error(exc)
        return _json(status_body(order), 200)

    @bp.post("/orders/<order_id>/cancel")
    @limited
    def cancel_view(order_id: str) -> Response:
        try:
            principal = device("orders:place")
            data = _body(PRESS_MAX_PAYLOAD)
            if data.strip():  # the token is the whole request; a body, if sent, is a map
                decode(data, _json_format())
            if not _ORDER_ID.match(order_id):
                raise NotFound("not_found", "no such order")
            assert principal.device_id is not None
            actor = Actor.device(principal.device_id, principal.link_id)
            order = cancel_order(db, order_id, actor)
        except Exception as exc:
            return _error(exc)
        return _json({"order": order.summary()}, 200)

    return bp


def _json_format() -> ContentFormat:
    """Only JSON is spoken here (CBOR is for CoAP); an unlabelled body is read as JSON."""
    mimetype = request.mimetype
    if mimetype and mimetype not in _JSON_TYPES:
        raise PayloadError(f"use {SENML_JSON} or application/json", Code.UNSUPPORTED_CONTENT_FORMAT)
    return JSON


def _body(max_bytes: int) -> bytes:
    """The request body, refused unread when it is larger than `max_bytes`."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadError(f"payload over {max_bytes} bytes")
    data = request.get_data(cache=False)
    if len(data) > max_bytes:  # chunked uploads carry no Content-Length
        raise PayloadError(f"payload over {max_bytes} bytes")
    return data


def _json(body: dict[str, Any], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def _error(exc: Exception) -> Response:
    """The CoAP error answer for `exc`, as problem+json with the matching HTTP status."""
    known = error_answer(exc)
    if known is None:
        raise exc
    code, body = known
    status = _http_status(code)
    error = str(body.pop("error"))
    detail = str(body.pop("detail", "")) or str(exc)
    response = problem(status, error, detail, **body)
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response


def _http_status(code: Code) -> int:
    """CoAP c.dd → HTTP c·100+dd (4.01 → 401); an oversize payload is a 400 bad payload here."""
    klass, detail = code.dotted.split(".")
    status = int(klass) * 100 + int(detail)
    return 400 if status == 413 else status
