"""Authorization code + PKCE (S256 only), consent, single-use codes and refresh rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from auth.model import AuthorizationCode, Token
from auth.principal import InvalidToken
from auth.tokens import token_hash, verify_access_token
from orders.store.db import Database, utcnow
from tests.auth_fixtures import (
    ALEXA_REDIRECT,
    WEB_REDIRECT,
    OAuthWorld,
    basic,
    build_oauth_world,
    code_params,
    consent,
    login_as,
    pkce_pair,
    query_of,
)
from tests.factories import count, db_snapshot
from tests.web_helpers import csrf_token


@pytest.fixture
def o(db: Database) -> OAuthWorld:
    """Clients of every kind and a shopper account."""
    return build_oauth_world(db)


def _code(client: FlaskClient, o: OAuthWorld, challenge: str, **extra: str) -> str:
    login_as(client, o.shopper_account_id)
    response = consent(client, code_params(o, challenge, **extra))
    assert response.status_code == 302, response.text
    query = query_of(response)
    assert query["state"] == "st-123"
    return query["code"]


def _exchange(
    client: FlaskClient, o: OAuthWorld, code: str, verifier: str | None, **kw: Any
) -> TestResponse:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": ALEXA_REDIRECT}
    if verifier is not None:
        data["code_verifier"] = verifier
    data.update(kw.pop("data", {}))
    headers = kw.pop("headers", basic(o.alexa, o.alexa_secret))
    return client.post("/oauth/token", data=data, headers=headers)


def test_alexa_links_a_shopper_with_code_and_pkce(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Consent → code → token (Basic auth): a shopper token for the client's store."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    response = _exchange(client, o, code, verifier)
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert body["token_type"] == "Bearer" and body["refresh_token"]
    assert body["scope"] == "orders:place orders:read"
    principal = verify_access_token(db, body["access_token"], "orders:place")
    assert principal.kind == "shopper"
    assert principal.store_id == o.world.store_id
    assert principal.account_id == o.shopper_account_id and principal.shopper_id is not None


def test_alexa_may_authenticate_with_client_secret_post(client: FlaskClient, o: OAuthWorld) -> None:
    """Alexa offers client_secret_post as well as Basic; both work."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    response = _exchange(
        client, o, code, verifier,
        headers={}, data={"client_id": o.alexa, "client_secret": o.alexa_secret},
    )  # fmt: skip
    assert response.status_code == 200, response.text


def test_public_web_client_uses_pkce_without_a_secret(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A public client (auth method none) gets a token with its verifier alone."""
    verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    params = code_params(o, challenge, client_id=o.web, redirect_uri=WEB_REDIRECT)
    code = query_of(consent(client, params))["code"]
    response = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT,
        "client_id": o.web, "code_verifier": verifier,
    })  # fmt: skip
    assert response.status_code == 200, response.text
    assert verify_access_token(db, response.get_json()["access_token"]).kind == "shopper"


def test_consent_page_needs_sign_in_and_comes_back(client: FlaskClient, o: OAuthWorld) -> None:
    """Signed out, /oauth/authorize redirects to /login?next=… (the same request)."""
    _verifier, challenge = pkce_pair()
    response = client.get("/oauth/authorize", query_string=code_params(o, challenge))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?next=") and "oauth" in location


def test_consent_page_names_the_client_and_scopes_and_has_csrf(
    client: FlaskClient, o: OAuthWorld
) -> None:
    """The page names the client, lists the scopes, offers approve and deny, carries csrf_token."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    page = client.get("/oauth/authorize", query_string=code_params(o, challenge))
    assert "Alexa" in page.text and "orders:place" in page.text
    for text in ('name="csrf_token"', 'value="approve"', 'value="deny"', "<h1>"):
        assert text in page.text


def test_consent_without_csrf_token_issues_no_code(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A forged cross-site approve (no CSRF token) is refused and stores nothing."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    before = db_snapshot(db)
    response = client.post(
        "/oauth/authorize", query_string=code_params(o, challenge), data={"decision": "approve"}
    )
    assert response.status_code == 400
    assert db_snapshot(db) == before


def test_deny_redirects_with_access_denied(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Deny → redirect with error=access_denied and the state; no code stored."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    before = db_snapshot(db)
    response = consent(client, code_params(o, challenge), decision="deny")
    assert response.status_code == 302
    assert response.headers["Location"].startswith(ALEXA_REDIRECT)
    query = query_of(response)
    assert (query["error"], query["state"]) == ("access_denied", "st-123")
    assert db_snapshot(db) == before


def test_merchant_only_account_cannot_approve(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """An account without a shopper can't link Alexa: no approve button, approve refused."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.merchant_account_id)
    page = client.get("/oauth/authorize", query_string=code_params(o, challenge))
    assert 'value="approve"' not in page.text
    assert count(db, AuthorizationCode) == 0
    response = client.post(
        "/oauth/authorize",
        query_string=code_params(o, challenge),
        data={"decision": "approve", "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 400 and count(db, AuthorizationCode) == 0


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"code_challenge_method": "plain"}, "plain"),
        ({"code_challenge_method": ""}, "missing method means plain"),
        ({"code_challenge": ""}, "no challenge"),
        ({"code_challenge": "short"}, "malformed challenge"),
    ],
)
def test_authorize_refuses_anything_but_s256(
    client: FlaskClient, db: Database, o: OAuthWorld, change: dict[str, str], why: str
) -> None:
    """PKCE is S256 only and required: the client is sent back with invalid_request."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    params = {k: v for k, v in {**code_params(o, challenge), **change}.items() if v}
    before = db_snapshot(db)
    response = client.get("/oauth/authorize", query_string=params)
    assert response.status_code == 302, why
    assert query_of(response)["error"] == "invalid_request", why
    assert db_snapshot(db) == before


def test_redirect_uri_must_match_exactly_and_is_never_followed_otherwise(
    client: FlaskClient, o: OAuthWorld
) -> None:
    """A different, extended or missing redirect_uri gets an error page, not a redirect."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    for uri in (ALEXA_REDIRECT + "/x", ALEXA_REDIRECT + "?a=1", "https://evil.example/cb", ""):
        params = {k: v for k, v in code_params(o, challenge, redirect_uri=uri).items() if v}
        response = client.get("/oauth/authorize", query_string=params)
        assert response.status_code == 400, uri
        assert "Location" not in response.headers


def test_unknown_client_at_authorize_gets_an_error_page(client: FlaskClient, o: OAuthWorld) -> None:
    """An unknown client_id is never redirected to: 400 page naming invalid_client."""
    _verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    response = client.get(
        "/oauth/authorize", query_string=code_params(o, challenge, client_id="nope")
    )
    assert response.status_code == 400 and "invalid_client" in response.text
    assert "is not one this store knows" in response.text  # said for people, code kept


def test_code_token_request_with_wrong_verifier_is_invalid_grant(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A verifier that doesn't hash to the challenge → invalid_grant; nothing issued."""
    _verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    before = db_snapshot(db)
    response = _exchange(client, o, code, pkce_pair()[0])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert db_snapshot(db) == before


def test_confidential_client_without_verifier_is_refused(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Authlib only forces a verifier on public clients; we force it on Alexa too."""
    _verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    before = db_snapshot(db)
    response = _exchange(client, o, code, None)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    assert db_snapshot(db) == before


def test_token_request_with_a_different_redirect_uri_is_invalid_grant(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The token request's redirect_uri must equal the authorize request's."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    before = db_snapshot(db)
    response = _exchange(client, o, code, verifier, data={"redirect_uri": ALEXA_REDIRECT + "/"})
    assert response.get_json()["error"] == "invalid_grant"
    assert db_snapshot(db) == before


def test_wrong_client_secret_is_invalid_client(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """A bad secret (Basic) → 401 invalid_client; via POST → invalid_client; nothing changes."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    before = db_snapshot(db)
    response = _exchange(client, o, code, verifier, headers=basic(o.alexa, "wrong"))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    response = _exchange(
        client, o, code, verifier, headers={}, data={"client_id": o.alexa, "client_secret": "x"}
    )
    assert response.get_json()["error"] == "invalid_client"
    response = _exchange(client, o, code, verifier, headers={}, data={"client_id": o.alexa})
    assert response.get_json()["error"] == "invalid_client", (
        "a confidential client can't skip its secret"
    )
    assert db_snapshot(db) == before


def test_a_code_works_once_and_its_replay_revokes_what_it_issued(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Second use → invalid_grant, and the token from the first use stops working at once."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    first = _exchange(client, o, code, verifier).get_json()
    verify_access_token(db, first["access_token"])
    again = _exchange(client, o, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    with pytest.raises(InvalidToken):
        verify_access_token(db, first["access_token"])
    assert count(db, Token) == 1


def test_code_of_another_client_is_invalid_grant(client: FlaskClient, o: OAuthWorld) -> None:
    """A code issued to Alexa can't be redeemed by the web client."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    response = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": ALEXA_REDIRECT,
        "client_id": o.web, "code_verifier": verifier,
    })  # fmt: skip
    assert response.get_json()["error"] == "invalid_grant"


def test_unsupported_grant_types_are_named(client: FlaskClient, o: OAuthWorld) -> None:
    """password and implicit-style grants → unsupported_grant_type."""
    for grant in ("password", "implicit", "urn:x"):
        response = client.post(
            "/oauth/token", data={"grant_type": grant}, headers=basic(o.alexa, o.alexa_secret)
        )
        assert response.status_code == 400
        assert response.get_json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Refresh once → new pair; the old refresh token fails and its replay kills the family."""
    verifier, challenge = pkce_pair()
    first = _exchange(client, o, _code(client, o, challenge), verifier).get_json()
    auth = basic(o.alexa, o.alexa_secret)
    second = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=auth,
    )
    assert second.status_code == 200, second.text
    second_body = second.get_json()
    assert second_body["refresh_token"] != first["refresh_token"]
    verify_access_token(db, second_body["access_token"])
    replay = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=auth,
    )
    assert replay.get_json()["error"] == "invalid_grant"
    for token in (first["access_token"], second_body["access_token"]):
        with pytest.raises(InvalidToken):
            verify_access_token(db, token)
    third = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": second_body["refresh_token"]},
        headers=auth,
    )
    assert third.get_json()["error"] == "invalid_grant"


def test_refresh_may_narrow_but_not_widen_scope(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """scope ⊂ original is granted; a wider scope → invalid_scope and nothing changes."""
    verifier, challenge = pkce_pair()
    first = _exchange(client, o, _code(client, o, challenge), verifier).get_json()
    auth = basic(o.alexa, o.alexa_secret)
    before = db_snapshot(db)
    wide = client.post("/oauth/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "scope": "orders:place merchant:admin",
    })  # fmt: skip
    assert wide.get_json()["error"] == "invalid_scope"
    assert db_snapshot(db) == before
    narrow = client.post("/oauth/token", headers=auth, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "scope": "orders:read",
    })  # fmt: skip
    assert narrow.get_json()["scope"] == "orders:read"


def test_refresh_token_of_another_client_is_invalid_grant(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The web client can't use Alexa's refresh token; nothing changes."""
    verifier, challenge = pkce_pair()
    first = _exchange(client, o, _code(client, o, challenge), verifier).get_json()
    before = db_snapshot(db)
    response = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": o.web,
    })  # fmt: skip
    assert response.get_json()["error"] == "invalid_grant"
    assert db_snapshot(db) == before


def test_metadata_advertises_exactly_what_is_supported(client: FlaskClient) -> None:
    """RFC 8414 metadata: our endpoints, S256 only, the four grants, the five scopes."""
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    body = client.get("/.well-known/oauth-authorization-server").get_json()
    issuer = "http://restock.test"
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == f"{issuer}/oauth/token"
    assert body["device_authorization_endpoint"] == f"{issuer}/oauth/device_authorization"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) == {
        "authorization_code", "refresh_token", "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    }  # fmt: skip
    assert "plain" not in str(body) and "password" not in str(body) and "implicit" not in str(body)
    assert set(body["scopes_supported"]) == {
        "orders:place", "orders:read", "devices:telemetry", "supplies:read", "merchant:admin",
        "orders:write", "catalog:read", "catalog:write", "devices:read", "devices:write",
        "webhooks:read", "webhooks:write",
    }  # fmt: skip
    https = {
        k: v.replace("http://", "https://") if isinstance(v, str) else v for k, v in body.items()
    }
    AuthorizationServerMetadata(https).validate()


def test_authorization_codes_are_stored_only_as_hashes(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The code in the redirect is nowhere in the database; its SHA-256 is."""
    _verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    dumped = repr(db_snapshot(db))
    assert code not in dumped and token_hash(code) in dumped


def test_an_expired_code_is_invalid_grant(client: FlaskClient, db: Database, o: OAuthWorld) -> None:
    """A code past its five minutes is refused and nothing is issued."""
    verifier, challenge = pkce_pair()
    code = _code(client, o, challenge)
    with db.write() as session:
        session.execute(
            update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    before = db_snapshot(db)
    response = _exchange(client, o, code, verifier)
    assert response.get_json()["error"] == "invalid_grant"
    assert db_snapshot(db) == before
