"""What operators reach over HTTP: request ids, request metrics, /readyz and /metrics."""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from contextvars import Token
from typing import Any

from flask import Flask, Response, g, jsonify, request
from sqlalchemy import text

from auth.http import problem
from orders.domain import ops
from orders.store.db import Database, utcnow
from orders.store.webhook_queue import outbox_lag
from restock import metrics
from restock.migrate import database_heads, script_heads
from restock.settings import Settings

log = logging.getLogger("restock")
# One line per answered request (an access log with the request id on it).
access = logging.getLogger("restock.access")

REQUEST_ID_HEADER = "X-Request-Id"
# An id from outside is kept only if it is short and plain: it lands in every log line.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ReadyCheck = Callable[[], str | None]


def new_request_id() -> str:
    """A fresh request id (random, 128 bits)."""
    return os.urandom(16).hex()


def incoming_request_id(value: str | None) -> str:
    """The caller's X-Request-Id if it is a plain token, else a new one."""
    if value and _GOOD_ID.fullmatch(value):
        return value
    return new_request_id()


def register(app: Flask, settings: Settings, db: Database) -> None:
    """Install the request hooks and the operator endpoints on `app`."""
    _register_request_ids(app)
    checks: dict[str, ReadyCheck] = app.extensions["restock"]["ready_checks"]
    heads = script_heads()

    @app.get("/readyz")
    def readyz() -> Any:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                at = database_heads(conn)
        except Exception:  # readiness reports any database failure as not ready
            log.exception("readiness check: the database does not answer")
            return problem(503, "unavailable", "the database does not answer")
        failing = {} if at == heads else {"migrations": "the database is not at head: migrate"}
        for name, check in checks.items():
            why = check()
            if why is not None:
                failing[name] = why
        if failing:
            return problem(503, "not_ready", "; ".join(failing.values()), checks=failing)
        lag = _outbox_lag()
        body: dict[str, Any] = {
            "status": "ready",
            "checks": sorted(["database", "migrations", *checks]),
            "outbox_lag_seconds": None if lag is None else round(lag, 1),
        }
        # Still 200: a lagging dispatcher is no reason to take this process out of service.
        if lag is not None and lag > settings.outbox_lag_limit:
            body["status"] = "degraded"
            body["degraded"] = {
                "outbox": f"webhooks are {lag:.0f} s behind (limit "
                f"{settings.outbox_lag_limit:g} s): is a worker running?"
            }
        return jsonify(body)

    def _outbox_lag() -> float | None:
        try:
            with db.read() as session:
                return outbox_lag(session, utcnow())
        except Exception:  # the database answered above: a failing lag query is logged only
            log.exception("readiness check: the outbox lag could not be read")
            return None

    token = settings.metrics_token
    if token is None:
        return  # unset: no /metrics at all (404)
    expected = f"Bearer {token}".encode()

    @app.get("/metrics")
    def metrics_page() -> Any:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            answer = problem(401, "unauthorized", "/metrics needs its bearer token")
            answer.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return answer
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)


def _register_request_ids(app: Flask) -> None:
    """Every request gets an id (its caller's or a new one), on its log lines and answer."""

    @app.before_request
    def take_request_id() -> None:
        rid = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id = rid
        g.request_token = ops.REQUEST_ID.set(rid)
        g.request_started = time.perf_counter()

    @app.after_request
    def give_request_id(response: Response) -> Response:
        rid = g.get("request_id")
        if rid is not None:
            response.headers[REQUEST_ID_HEADER] = rid
        started = g.get("request_started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            code = str(response.status_code)
            seconds = time.perf_counter() - started
            ops.count("http_requests", route, request.method, code)
            ops.observe("http_request_seconds", seconds, route)
            # The path only: a query string may carry a user code or a token.
            access.info(
                "%s %s %s %.1f ms", request.method, request.path, code, seconds * 1000,
                extra={"method": request.method, "path": request.path,
                       "status": response.status_code, "ms": round(seconds * 1000, 1)},
            )  # fmt: skip
            if response.status_code == 429:
                ops.count(ops.RATE_LIMITED, "http")
        return response

    @app.teardown_request
    def drop_request_id(_exc: BaseException | None) -> None:
        reset: Token[str | None] | None = g.pop("request_token", None)
        if reset is not None:
            ops.REQUEST_ID.reset(reset)
