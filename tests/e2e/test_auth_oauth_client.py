"""An independent OAuth client (Authlib's requests OAuth2Session) against a real HTTP server."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask

from auth.principal import InvalidToken
from auth.tokens import verify_access_token
from orders.store.db import Database
from tests.auth_fixtures import DEVICE_GRANT, PASSWORD, WEB_REDIRECT, build_oauth_world
from tests.e2e.auth_helpers import browser_consent, browser_link, browser_sign_in, serve
from tests.e2e.conftest import restock_env, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def seeded_restock(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """`seed --demo --json` (its secrets are printed only then), then `python -m restock run`."""
    result = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path))
    assert result.returncode == 0, result.stderr
    demo: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    running: tuple[str, subprocess.Popen[str]] = request.getfixturevalue("running_restock")
    return running[0], demo


def test_alexa_account_linking_with_authlib_client_against_restock_run(
    seeded_restock: tuple[str, dict[str, Any]],
) -> None:
    """Seeded Alexa client: code + PKCE S256, Basic then POST auth, refresh rotation, revoke."""
    base, demo = seeded_restock
    alexa = demo["clients"]["alexa"]
    meta = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == base and meta["code_challenge_methods_supported"] == ["S256"]
    browser = browser_sign_in(base, demo["shopper"]["email"], demo["shopper"]["password"])

    for method in ("client_secret_basic", "client_secret_post"):
        oauth = OAuth2Session(
            alexa["client_id"], alexa["client_secret"], scope="orders:place orders:read",
            redirect_uri=alexa["redirect_uri"], code_challenge_method="S256",
            token_endpoint_auth_method=method, revocation_endpoint_auth_method=method,
        )  # fmt: skip
        verifier = generate_token(64)
        url, state = oauth.create_authorization_url(meta["authorization_endpoint"],
                                                    code_verifier=verifier)  # fmt: skip
        assert "code_challenge_method=S256" in url
        location = browser_consent(browser, url, "approve")
        assert location.startswith(alexa["redirect_uri"])
        token = oauth.fetch_token(meta["token_endpoint"], authorization_response=location,
                                  code_verifier=verifier, state=state)  # fmt: skip
        assert token["token_type"] == "Bearer" and token["scope"] == "orders:place orders:read"
        old_refresh = token["refresh_token"]

        fresh = oauth.refresh_token(meta["token_endpoint"])
        assert fresh["refresh_token"] != old_refresh
        with pytest.raises(OAuthError) as replay:
            oauth.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
        assert replay.value.error == "invalid_grant", method

    # The replay revoked that family; a last link, revoked through RFC 7009, goes at once.
    verifier = generate_token(64)
    url, state = oauth.create_authorization_url(meta["authorization_endpoint"],
                                                code_verifier=verifier)  # fmt: skip
    location = browser_consent(browser, url, "approve")
    token = oauth.fetch_token(meta["token_endpoint"], code_verifier=verifier, state=state,
                              authorization_response=location)  # fmt: skip
    seen = oauth.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    assert seen.json()["active"] is True
    assert oauth.revoke_token(meta["revocation_endpoint"], token=token["access_token"]).ok
    gone = oauth.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    assert gone.json() == {"active": False}


def test_button_links_through_the_device_flow_with_authlib_client(
    seeded_restock: tuple[str, dict[str, Any]],
) -> None:
    """Seeded button: device authorization, pending, approval on /link, one token, never two."""
    base, demo = seeded_restock
    device = OAuth2Session(demo["clients"]["button"], token_endpoint_auth_method="none")
    started = device.post(f"{base}/oauth/device_authorization",
                          data={"client_id": demo["clients"]["button"], "serial": "E2E-1"},
                          timeout=10, withhold_token=True).json()  # fmt: skip
    assert started["verification_uri"] == f"{base}/link"

    def poll() -> dict[str, Any]:
        token: dict[str, Any] = device.fetch_token(
            f"{base}/oauth/token", grant_type=DEVICE_GRANT, device_code=started["device_code"]
        )
        return token

    with pytest.raises(OAuthError) as pending:
        poll()
    assert pending.value.error == "authorization_pending"
    with pytest.raises(OAuthError) as slow:
        poll()
    assert slow.value.error == "slow_down"

    browser = browser_sign_in(base, demo["shopper"]["email"], demo["shopper"]["password"])
    page = browser_link(browser, started["verification_uri_complete"], "approve", "BAT-AA-8")
    assert "Device linked" in page
    time.sleep(started["interval"] + 5 + 0.5)  # the slow_down raised the interval by 5 s
    token = poll()
    assert token["access_token"] and token["refresh_token"] and token["device_id"]
    time.sleep(0.1)
    with pytest.raises(OAuthError) as again:
        poll()
    assert again.value.error == "invalid_grant"


@pytest.fixture
def served(app: Flask) -> Any:
    """The test app (SQLite and PostgreSQL) on waitress in a thread."""
    with serve(app) as base:
        yield base


def test_public_web_client_pkce_and_deny_over_waitress(served: str, db: Database) -> None:
    """A public client: deny → access_denied at the redirect; approve → token that verifies."""
    o = build_oauth_world(db)
    browser = browser_sign_in(served, o.shopper_email, PASSWORD)
    oauth = OAuth2Session(
        o.web, scope="orders:read", redirect_uri=WEB_REDIRECT,
        code_challenge_method="S256", token_endpoint_auth_method="none",
    )  # fmt: skip
    verifier = generate_token(64)
    url, _state = oauth.create_authorization_url(f"{served}/oauth/authorize",
                                                 code_verifier=verifier)  # fmt: skip
    denied = parse_qs(urlsplit(browser_consent(browser, url, "deny")).query)
    assert denied["error"] == ["access_denied"]

    url, state = oauth.create_authorization_url(f"{served}/oauth/authorize",
                                                code_verifier=verifier)  # fmt: skip
    location = browser_consent(browser, url, "approve")
    with pytest.raises(OAuthError) as no_pkce:  # the same code without its verifier
        OAuth2Session(
            o.web, redirect_uri=WEB_REDIRECT, token_endpoint_auth_method="none"
        ).fetch_token(f"{served}/oauth/token", authorization_response=location, state=state)
    assert no_pkce.value.error == "invalid_request"
    token = oauth.fetch_token(f"{served}/oauth/token", authorization_response=location,
                              code_verifier=verifier, state=state)  # fmt: skip
    principal = verify_access_token(db, token["access_token"], "orders:read")
    assert principal.kind == "shopper" and principal.store_id == o.world.store_id
    oauth.revoke_token(f"{served}/oauth/revoke", token=token["refresh_token"],
                       token_type_hint="refresh_token")  # fmt: skip
    with pytest.raises(InvalidToken):
        verify_access_token(db, token["access_token"])
