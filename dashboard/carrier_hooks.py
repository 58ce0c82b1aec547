"""Carrier aggregators' webhooks: EasyPost `tracker.updated` at /hooks/carriers/easypost/<store>.

EasyPost signs each delivery with `X-Hmac-Signature: hmac-sha256-hex=<hex>`, the HMAC-SHA256
of the raw body under the webhook secret (NFKD-normalised, UTF-8) that the merchant set for
the store. A missing or wrong signature is a 401 and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_limiter import Limiter

from auth.http import problem
from orders.domain.errors import DomainError, InvalidRequest, NotAllowed, NotFound
from orders.domain.tracking import EASYPOST_STATUS
from orders.services.carrier_hooks import carrier_secret
from orders.services.tracking import CarrierScan, record_carrier_update
from orders.store.db import Database

SIGNATURE_HEADER = "X-Hmac-Signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
# Tracker payloads carry the whole scan history; far below the app's 1 MiB.
MAX_BODY = 256 * 1024
TRACKER_EVENTS = ("tracker.created", "tracker.updated")
RATE = "300 per minute"


def easypost_signature(secret: str, body: bytes) -> str:
    """The `X-Hmac-Signature` value EasyPost sends for `body` under `secret`."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidRequest("bad_time", "a tracking detail needs its datetime")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest("bad_time", "unreadable datetime") from None
    if moment.tzinfo is None:
        raise InvalidRequest("bad_time", "a datetime needs its zone")
    return moment


def _estimate(value: object) -> datetime | date | None:
    if value in (None, ""):
        return None
    return _time(value)


def tracker_scans(tracker: dict[str, Any]) -> list[CarrierScan]:
    """The scans of an EasyPost Tracker, oldest first; the newest carries the estimate.

    Scans have no ids of their own: the tracker id, time and status name one. The newest
    one's id also names the estimate, so a changed estimate is news and a resend is not.
    """
    details = tracker.get("tracking_details")
    if not isinstance(details, list):
        raise InvalidRequest("bad_payload", "tracking_details must be a list")
    tracker_id = str(tracker.get("id") or "")
    scans: list[tuple[datetime, str, dict[str, Any]]] = []
    for detail in details:
        if not isinstance(detail, dict):
            raise InvalidRequest("bad_payload", "a tracking detail must be an object")
        status = EASYPOST_STATUS.get(str(detail.get("status")))
        if status is not None:
            scans.append((_time(detail.get("datetime")), status, detail))
    scans.sort(key=lambda item: item[0])
    estimate = _estimate(tracker.get("est_delivery_date"))
    out = []
    for index, (at, status, detail) in enumerate(scans):
        newest = index == len(scans) - 1
        key = f"{tracker_id}:{at.isoformat()}:{detail.get('status_detail') or status}"
        if newest and estimate is not None:
            key += f":{estimate.isoformat()}"
        text = detail.get("message") or detail.get("description")
        out.append(
            CarrierScan(
                external_id=key[-200:],
                status=status,
                occurred_at=at,
                estimated_delivery=estimate if newest else None,
                description=text if isinstance(text, str) else None,
            )
        )
    return out


def make_blueprint(db: Database, limiter: Limiter) -> Blueprint:
    """The aggregator receivers over `db`, rate limited per address through `limiter`."""
    bp = Blueprint("carrier_hooks", __name__, url_prefix="/hooks/carriers")

    @bp.post("/easypost/<int:store_id>")
    @limiter.limit(RATE)
    def easypost(store_id: int) -> Response | tuple[Response, int]:
        """Verify the signature, then apply the tracker's scans to the order it tracks."""
        if (request.content_length or 0) > MAX_BODY:
            return problem(413, "payload_too_large", f"at most {MAX_BODY} bytes")
        body = request.get_data(cache=False)
        secret = carrier_secret(db, store_id, "easypost")
        given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        # An unknown store and a wrong signature look alike: nothing to learn by probing.
        if secret is None or not hmac.compare_digest(given, easypost_signature(secret, body)):
            return problem(401, "invalid_signature", f"{SIGNATURE_HEADER} does not verify")
        try:
            event = json.loads(body)
        except ValueError:
            return problem(400, "invalid_request", "the body is not JSON")
        if not isinstance(event, dict) or event.get("description") not in TRACKER_EVENTS:
            return jsonify(result="ignored", reason="not_a_tracker_event")
        tracker = event.get("result")
        if not isinstance(tracker, dict) or not isinstance(tracker.get("tracking_code"), str):
            return problem(400, "invalid_request", "the event carries no tracker")
        try:
            scans = tracker_scans(tracker)
            if not scans:
                return jsonify(result="ignored", reason="no_scans")
            carrier = tracker.get("carrier")
            result = record_carrier_update(
                db,
                store_id=store_id,
                tracking_number=tracker["tracking_code"],
                scans=scans,
                carrier=carrier if isinstance(carrier, str) else None,
                source="easypost",
            )
        except NotFound:
            # Not one of this store's shipments: acknowledged, so EasyPost does not retry.
            return jsonify(result="ignored", reason="unknown_tracker")
        except NotAllowed as exc:
            # Not shipped yet here: a non-2xx makes EasyPost send it again later.
            return problem(409, exc.reason, exc.detail)
        except DomainError as exc:
            return problem(400, "invalid_request", exc.detail, reason=exc.reason)
        return jsonify(
            result="duplicate" if result.duplicate else "recorded",
            order=result.order.id,
            status=result.order.status,
            delayed=result.delayed,
        )

    return bp
