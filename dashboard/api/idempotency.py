"""`Idempotency-Key` on create requests: the first answer is kept and replayed on repeats."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request

from dashboard.common import get_db
from orders.services import idempotency

HEADER = "Idempotency-Key"


def fingerprint() -> str:
    """What makes two requests the same: method, path and body bytes."""
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.get_data()):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def once(client_id: str, run: Callable[[], Any]) -> Any:
    """Run a create request once per client and key; a repeat gets the first answer."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    db = get_db()
    stored = idempotency.claim(db, client_id, key, fingerprint())
    if stored is not None:
        replay = Response(stored.body, status=stored.status, mimetype="application/json")
        if stored.location:
            replay.headers["Location"] = stored.location
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = current_app.make_response(run())
    except BaseException:
        idempotency.release(db, client_id, key)
        raise
    if 200 <= response.status_code < 300:
        body = response.get_data(as_text=True)
        location = response.headers.get("Location")
        idempotency.answer(db, client_id, key, idempotency.Stored(response.status_code, body,
                                                                  location))  # fmt: skip
    else:
        idempotency.release(db, client_id, key)
    return response
