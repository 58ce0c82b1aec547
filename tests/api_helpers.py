"""Merchant REST API test helpers: scoped merchant tokens and JSON calls with problem checks."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from auth.principal import MERCHANT_API_SCOPES
from auth.tokens import issue_token
from orders.store.db import Database

EVERY_SCOPE = " ".join(MERCHANT_API_SCOPES)


def merchant_token(db: Database, store_id: int, scope: str = EVERY_SCOPE) -> str:
    """An access token of a merchant API client of `store_id` with `scope`."""
    with db.write() as session:
        issued = issue_token(session, client_id=f"api-test-{store_id}", kind="merchant",
                             scope=scope, store_id=store_id, with_refresh=False)  # fmt: skip
    return issued.access_token


def call(
    app: Flask,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    **headers: str,
) -> TestResponse:
    """One API request (JSON body when given) with a bearer token."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    return app.test_client().open(f"/api/v1{path}", method=method, **kwargs)


def assert_problem(response: TestResponse, status: int, error: str | None = None) -> None:
    """The response is an RFC 9457 problem with `status` (and `error`, when given)."""
    assert response.status_code == status, response.text
    assert response.mimetype == "application/problem+json", response.mimetype
    body = response.get_json()
    assert body["status"] == status
    if error is not None:
        assert body["error"] == error, body
