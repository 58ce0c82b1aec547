"""Helpers for tests that drive HTML forms: read the CSRF token, sign in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

_CSRF = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)


def csrf_token(html: str) -> str:
    """The CSRF token embedded in a rendered form."""
    match = _CSRF.search(html)
    if match is None:
        raise AssertionError("no csrf_token in the page")
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, email: str, password: str) -> None:
    """Sign in through the real /login form."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302, response.text
