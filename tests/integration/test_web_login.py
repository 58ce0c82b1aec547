"""Signing in on the web: CSRF on every form, no open redirects, sign-up makes a shopper."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from auth.accounts import create_account
from auth.model import Account
from orders.store.db import Database
from orders.store.model import Shopper
from tests.factories import db_snapshot
from tests.web_helpers import csrf_token, sign_in

PASSWORD = "a long enough password"


def _account(db: Database, email: str = "ada@example.test") -> None:
    with db.write() as session:
        create_account(session, email=email, password=PASSWORD, shopper_name="Ada")


def test_login_page_has_the_contract_fields_and_a_csrf_token(client: FlaskClient) -> None:
    """`/login` offers `email`, `password` and `csrf_token`."""
    page = client.get("/login")
    assert page.status_code == 200
    for field in ('name="email"', 'name="password"', 'name="csrf_token"'):
        assert field in page.text
    assert csrf_token(page.text)


def test_login_without_csrf_token_is_refused(client: FlaskClient, db: Database) -> None:
    """A form post without the CSRF token does not sign in."""
    _account(db)
    response = client.post("/login", data={"email": "ada@example.test", "password": PASSWORD})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_login_with_the_right_password_signs_in(client: FlaskClient, db: Database) -> None:
    """Right credentials → a session; the follow-up redirect stays on this site."""
    _account(db)
    page = client.get("/login?next=/orders")
    response = client.post(
        "/login?next=/orders",
        data={
            "email": "ADA@example.test",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/orders"
    with client.session_transaction() as session:
        assert session["_user_id"]


def test_wrong_password_is_401_and_no_session(client: FlaskClient, db: Database) -> None:
    """A wrong password answers 401 with a message and no session."""
    _account(db)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": "ada@example.test",
            "password": "wrong",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 401
    assert "do not match" in response.text
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_login_never_redirects_off_site(client: FlaskClient, db: Database) -> None:
    """`next=https://evil.example` and `//evil.example` fall back to `/`."""
    _account(db)
    for target in ("https://evil.example/", "//evil.example/x"):
        page = client.get("/login")
        response = client.post(
            f"/login?next={target}",
            data={
                "email": "ada@example.test",
                "password": PASSWORD,
                "csrf_token": csrf_token(page.text),
            },
        )
        assert response.headers["Location"] == "/"


def test_signup_creates_a_shopper_then_asks_to_sign_in(client: FlaskClient, db: Database) -> None:
    """Sign-up makes an account with a shopper and hashed password, then sends to /login."""
    page = client.get("/signup")
    response = client.post(
        "/signup",
        data={
            "name": "Grace",
            "email": "grace@example.test",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?signed_up=1"
    with db.read() as session:
        account = session.scalar(select(Account).where(Account.email == "grace@example.test"))
        assert account is not None and account.shopper_id is not None
        assert PASSWORD not in account.password_hash
        assert session.get(Shopper, account.shopper_id) is not None


def test_signup_with_a_short_password_or_bad_email_changes_nothing(
    client: FlaskClient, db: Database
) -> None:
    """Bad sign-ups answer 400 and leave the database as it was."""
    _account(db)
    before = db_snapshot(db)
    for email, password in (("new@example.test", "short"), ("not-an-email", PASSWORD)):
        page = client.get("/signup")
        response = client.post(
            "/signup",
            data={
                "name": "X",
                "email": email,
                "password": password,
                "csrf_token": csrf_token(page.text),
            },
        )
        assert response.status_code == 400
    assert db_snapshot(db) == before


def test_logout_needs_the_csrf_token(client: FlaskClient, db: Database) -> None:
    """A cross-site POST /logout without a token keeps the session; with it, signs out."""
    _account(db)
    sign_in(client, "ada@example.test", PASSWORD)
    client.post("/logout")
    with client.session_transaction() as session:
        assert "_user_id" in session
    page = client.get("/login")
    client.post("/logout", data={"csrf_token": csrf_token(page.text)})
    with client.session_transaction() as session:
        assert "_user_id" not in session
