"""Linking devices over HTTP for tests: start the flow, approve on /link, poll for tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from auth.accounts import create_account
from auth.model import DeviceCode
from orders.services.addresses import add_address
from orders.store.db import Database, utcnow
from tests.auth_fixtures import DEVICE_GRANT, login_as
from tests.factories import HOME
from tests.web_helpers import csrf_token


def start(client: FlaskClient, client_id: str, serial: str, **extra: str) -> dict[str, Any]:
    """POST /oauth/device_authorization; the JSON answer (asserted 200)."""
    response = client.post(
        "/oauth/device_authorization", data={"client_id": client_id, "serial": serial, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    return body


def poll(client: FlaskClient, client_id: str, device_code: str) -> TestResponse:
    """One device-code poll at /oauth/token, after forgetting the last poll (no slow_down)."""
    return client.post(
        "/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id},
    )


def forget_polls(db: Database) -> None:
    """Pretend every last poll was long ago, so the next one is not `slow_down`."""
    with db.write() as session:
        session.execute(update(DeviceCode).values(last_polled_at=utcnow() - timedelta(minutes=1)))


def approve(
    client: FlaskClient, user_code: str, decision: str = "approve", **fields: str
) -> TestResponse:
    """Enter `user_code` on /link, then submit `decision` on the confirmation page."""
    page = client.post(
        "/link", data={"user_code": user_code, "csrf_token": csrf_token(client.get("/link").text)}
    )
    assert page.status_code == 200, page.text
    data = {"user_code": user_code, "decision": decision, "csrf_token": csrf_token(page.text)}
    data.update(fields)
    return client.post("/link", data=data)


def shopper_account(db: Database, email: str) -> int:
    """A new shopper account with a default delivery address; its id."""
    with db.write() as session:
        account = create_account(
            session, email=email, password="correct horse battery", shopper_name=email
        )
        assert account.shopper_id is not None
        add_address(session, account.shopper_id, HOME)
        return account.id


def link_over_http(
    app: Flask, db: Database, account_id: int, client_id: str, serial: str
) -> dict[str, Any]:
    """The whole device flow for `account_id` (own browser session); the token answer."""
    device = app.test_client()
    started = start(device, client_id, serial)
    browser = app.test_client()
    login_as(browser, account_id)
    done = approve(browser, started["user_code"], product="PODS")
    assert done.status_code == 200, done.text
    forget_polls(db)
    issued = poll(device, client_id, started["device_code"])
    assert issued.status_code == 200, issued.text
    body: dict[str, Any] = issued.get_json()
    return body
