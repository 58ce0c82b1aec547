"""Sign-up, login and user-code limits that free accounts can't multiply (issue #14, item 5)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

import auth.accounts
from auth.accounts import create_account
from auth.limits import CONFIG_KEY, RateLimits
from auth.model import Account
from orders.store.db import Database
from restock.settings import Settings
from tests.auth_fixtures import build_oauth_world, login_as
from tests.conftest import AppFactory
from tests.factories import count, db_snapshot
from tests.smtp_inbox import Inbox
from tests.web_helpers import csrf_token

PASSWORD = "a long enough password"
ROOMY = RateLimits(
    login="100 per minute", failed_logins_per_account="100 per minute", signup="100 per minute",
    link="100 per minute", wrong_user_codes="100 per minute",
    wrong_user_codes_per_address="100 per minute",
)  # fmt: skip


MakeApp = Callable[..., Flask]


@pytest.fixture
def make_app(app_factory: AppFactory, db: Database) -> MakeApp:
    """The app over `db` with these limits (roomy unless given) and Settings overrides."""

    def build(limits: RateLimits = ROOMY, **settings: Any) -> Flask:
        return app_factory(db, config={CONFIG_KEY: limits}, **settings)

    return build


def _registered(db: Database, email: str = "ada@example.test") -> None:
    with db.write() as session:
        create_account(session, email=email, password=PASSWORD, shopper_name="Ada")


def _sign_up(client: FlaskClient, email: str, *, addr: str = "127.0.0.1") -> TestResponse:
    page = client.get("/signup?next=/my/orders")
    return client.post(
        "/signup?next=/my/orders",
        data={"name": "Someone", "email": email, "password": "another long password",
              "csrf_token": csrf_token(page.text)},
        environ_base={"REMOTE_ADDR": addr},
    )  # fmt: skip


def _log_in(client: FlaskClient, email: str, password: str, *, addr: str, **kw: Any) -> int:
    page = client.get("/login")
    data = {"email": email, "password": password, "csrf_token": csrf_token(page.text)}
    return client.post("/login", data=data, environ_base={"REMOTE_ADDR": addr}, **kw).status_code


# --- sign-up ---------------------------------------------------------------------------


def test_signing_up_with_a_registered_email_answers_exactly_like_a_new_one(
    db: Database, make_app: MakeApp
) -> None:
    """Same status, same redirect, same body; the registered account is left as it was."""
    _registered(db)
    client = make_app().test_client()
    before = db_snapshot(db)
    taken = _sign_up(client, "ADA@example.test")
    assert db_snapshot(db) == before, "nothing is created or changed for a registered email"
    fresh = _sign_up(client, "grace@example.test")
    assert (taken.status_code, taken.headers["Location"], taken.data) == (
        fresh.status_code, fresh.headers["Location"], fresh.data,
    )  # fmt: skip
    assert fresh.headers["Location"] == "/login?signed_up=1&next=/my/orders"
    assert count(db, Account) == 2
    with client.session_transaction() as session:
        assert "_user_id" not in session, "neither answer signs anybody in"
    page = client.get(fresh.headers["Location"])
    assert "If that email already had an account" in page.text


def test_a_registered_email_pays_for_the_password_hash_too(
    db: Database, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The argon2 hash runs for a registered email as for a new one (no timing tell)."""
    _registered(db)
    hashed: list[str] = []
    real = auth.accounts.hash_password

    def counting(password: str) -> str:
        hashed.append(password)
        return real(password)

    monkeypatch.setattr(auth.accounts, "hash_password", counting)
    client = make_app().test_client()
    assert _sign_up(client, "ada@example.test").status_code == 302
    assert hashed == ["another long password"]


def test_the_registered_address_gets_a_notice_over_smtp(
    db: Database, make_app: MakeApp, inbox: tuple[Inbox, int]
) -> None:
    """With RESTOCK_SMTP_URL set, the owner of a registered address is told; a new one is not."""
    received, port = inbox
    _registered(db)
    client = make_app(
        smtp_url=f"smtp://127.0.0.1:{port}", mail_from="shop@restock.test"
    ).test_client()
    assert _sign_up(client, "grace@example.test").status_code == 302
    assert _sign_up(client, "ada@example.test").status_code == 302
    assert received.arrived.wait(30), "no notice arrived"
    (notice,) = received.messages
    assert notice["To"] == "ada@example.test" and notice["From"] == "shop@restock.test"
    text = notice.get_content()
    assert "already have an account" in text and "http://restock.test/login" in text
    assert "another long password" not in text


def test_without_smtp_the_notice_is_logged_without_the_address(
    db: Database, make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    """RESTOCK_SMTP_URL unset: one log line says a notice was not sent, naming nobody."""
    _registered(db)
    client = make_app().test_client()
    with caplog.at_level(logging.INFO, logger="auth.mail"):
        assert _sign_up(client, "ada@example.test").status_code == 302
    lines = [r.getMessage() for r in caplog.records if r.name == "auth.mail"]
    assert len(lines) == 1 and "not sent" in lines[0]
    assert "ada@" not in caplog.text


def test_sign_up_is_limited_per_address(db: Database, make_app: MakeApp) -> None:
    """Two sign-ups a minute from one address, then an HTML 429 and no account; others go on."""
    tight = RateLimits(signup="2 per minute")
    client = make_app(tight).test_client()
    for n in range(2):
        assert _sign_up(client, f"new{n}@example.test").status_code == 302
    blocked = _sign_up(client, "third@example.test")
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert blocked.headers["Retry-After"]
    with db.read() as session:
        assert session.scalar(select(Account).where(Account.email == "third@example.test")) is None
    assert _sign_up(client, "third@example.test", addr="192.0.2.9").status_code == 302


# --- login -----------------------------------------------------------------------------


def test_failed_logins_are_limited_per_account_from_any_address(
    db: Database, make_app: MakeApp
) -> None:
    """Three failures for one email from three addresses; the fourth, even right, is 429."""
    _registered(db)
    _registered(db, "grace@example.test")
    tight = RateLimits(login="100 per minute", failed_logins_per_account="3 per minute")
    client = make_app(tight).test_client()
    for n in range(3):
        assert _log_in(client, "ada@example.test", "wrong guess!", addr=f"198.51.100.{n}") == 401
    assert _log_in(client, " ADA@example.test", PASSWORD, addr="198.51.100.9") == 429
    assert _log_in(client, "grace@example.test", PASSWORD, addr="198.51.100.0") == 302


def test_successful_logins_do_not_use_up_the_account_limit(db: Database, make_app: MakeApp) -> None:
    """Only failures count against an account: its owner signing in often is never locked out."""
    _registered(db)
    tight = RateLimits(login="100 per minute", failed_logins_per_account="2 per minute")
    app = make_app(tight)
    for _ in range(4):
        assert _log_in(app.test_client(), "ada@example.test", PASSWORD, addr="10.0.0.1") == 302


# --- wrong user codes --------------------------------------------------------------------


def test_wrong_user_codes_are_limited_per_address_across_accounts(
    db: Database, make_app: MakeApp
) -> None:
    """A second free account from the same address does not get a fresh guessing budget."""
    a, b = build_oauth_world(db, "a"), build_oauth_world(db, "b")
    tight = RateLimits(wrong_user_codes="5 per minute", wrong_user_codes_per_address="8 per minute")
    app = make_app(tight)
    first, second = app.test_client(), app.test_client()
    login_as(first, a.shopper_account_id)
    login_as(second, b.shopper_account_id)

    def guess(client: FlaskClient, addr: str = "127.0.0.1") -> int:
        token = csrf_token(client.get("/link").text)
        data = {"user_code": "BCDF-GHJK", "csrf_token": token}
        return client.post("/link", data=data, environ_base={"REMOTE_ADDR": addr}).status_code

    assert [guess(first) for _ in range(5)] == [400] * 5
    assert [guess(second) for _ in range(3)] == [400] * 3
    assert guess(second) == 429, "the address has used its eight wrong codes"
    assert guess(second, addr="192.0.2.7") == 400, "the account itself has guesses left"


# --- behind a reverse proxy ----------------------------------------------------------------


def test_a_trusted_proxy_hop_makes_limits_count_the_forwarded_address(
    db: Database, make_app: MakeApp
) -> None:
    """RESTOCK_TRUSTED_PROXIES=1: each client behind the proxy has its own login budget."""
    assert Settings.from_env({"RESTOCK_TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    tight = RateLimits(login="2 per minute")
    client = make_app(tight, trusted_proxies=1).test_client()

    def attempt(forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return _log_in(client, "x@example.test", "wrong", addr="10.0.0.1", headers=headers)

    assert [attempt("203.0.113.1") for _ in range(2)] == [401, 401]
    assert attempt("203.0.113.1") == 429
    assert attempt("203.0.113.2") == 401
    # Only the last hop is the proxy's: what the client put in front is not believed.
    assert attempt("203.0.113.2, 203.0.113.1") == 429


def test_without_trusted_proxies_x_forwarded_for_is_ignored(
    db: Database, make_app: MakeApp
) -> None:
    """The default (0): a client can't dodge a limit by sending X-Forwarded-For."""
    assert Settings.from_env({}).trusted_proxies == 0
    tight = RateLimits(login="2 per minute")
    client = make_app(tight).test_client()
    codes = [
        _log_in(client, "x@example.test", "wrong", addr="10.0.0.1",
                headers={"X-Forwarded-For": f"203.0.113.{n}"})
        for n in range(3)
    ]  # fmt: skip
    assert codes == [401, 401, 429]
