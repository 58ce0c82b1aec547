"""Security headers on every response: CSP that forbids framing, nosniff, Referrer-Policy, HSTS."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from orders.store.db import Database
from restock.app import create_app
from restock.settings import Settings
from tests.auth_fixtures import build_oauth_world, code_params, login_as, pkce_pair

PATHS = ["/", "/login", "/link", "/my/voice", "/healthz", "/no-such-page", "/api/v1/orders"]


def _assert_secure(response: TestResponse) -> None:
    """The headers every response must carry, whatever its status or type."""
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", PATHS)
def test_every_page_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    """Pages, redirects, error pages and problem+json all carry CSP, nosniff and Referrer-Policy."""
    response = client.get(path, headers={"Accept": "text/html"})
    _assert_secure(response)
    assert "Strict-Transport-Security" not in response.headers


def test_the_consent_page_and_link_page_cannot_be_framed(client: FlaskClient, db: Database) -> None:
    """The rendered OAuth consent page and /link forbid framing (clickjacking an approval)."""
    world = build_oauth_world(db)
    login_as(client, world.shopper_account_id)
    _verifier, challenge = pkce_pair()
    consent = client.get("/oauth/authorize", query_string=code_params(world, challenge))
    assert consent.status_code == 200 and 'value="approve"' in consent.text
    link = client.get("/link")
    assert link.status_code == 200
    for page in (consent, link):
        _assert_secure(page)


def test_https_deployments_send_hsts(db: Database, tmp_path: Path) -> None:
    """With an https public URL every response carries Strict-Transport-Security."""
    settings = Settings(
        database_url=str(db.engine.url),
        secret_key=secrets.token_hex(16),
        var_dir=tmp_path / "var",
        public_url="https://shop.example",
    )
    client = create_app(settings, db).test_client()
    for path in ("/healthz", "/login", "/no-such-page"):
        response = client.get(path)
        _assert_secure(response)
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_request_that_arrived_over_https_gets_hsts(client: FlaskClient) -> None:
    """A request the app sees as https gets HSTS even when the public URL says http."""
    response = client.get("/healthz", base_url="https://restock.test")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
