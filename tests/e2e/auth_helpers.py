"""A person's side of OAuth over real HTTP (requests): sign in, consent, approve a device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from flask import Flask

from restock.server import web_in_thread
from tests.web_helpers import csrf_token


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """`app` on waitress (a real HTTP server) on a free port, in a thread; yields its base URL."""
    with web_in_thread(app) as base:
        yield base


def browser_sign_in(base: str, email: str, password: str) -> requests.Session:
    """A requests session signed in through the real /login form."""
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10)
    response = browser.post(
        f"{base}/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return browser


def browser_consent(browser: requests.Session, authorize_url: str, decision: str) -> str:
    """Open the consent page, submit `decision`; returns the redirect Location (not followed)."""
    page = browser.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    response = browser.post(
        authorize_url,
        data={"decision": decision, "csrf_token": csrf_token(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def browser_link(
    browser: requests.Session, verification_uri_complete: str, decision: str, product: str
) -> str:
    """Follow the verification link, continue with the prefilled code, approve or deny."""
    page = browser.get(verification_uri_complete, timeout=10)
    assert page.status_code == 200, page.text
    code = verification_uri_complete.rsplit("=", 1)[1]
    assert f'value="{code}"' in page.text
    base = verification_uri_complete.split("/link", 1)[0]
    confirm = browser.post(
        f"{base}/link",
        data={"user_code": code, "csrf_token": csrf_token(page.text)},
        timeout=10,
    )
    assert confirm.status_code == 200, confirm.text
    done = browser.post(
        f"{base}/link",
        data={
            "user_code": code,
            "decision": decision,
            "product": product,
            "csrf_token": csrf_token(confirm.text),
        },
        timeout=10,
    )
    assert done.status_code == 200, done.text
    return done.text
