"""Client credentials for merchant API clients, revocation (RFC 7009), introspection (RFC 7662)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from auth.principal import MERCHANT_SCOPES, InvalidToken
from auth.tokens import issue_token, token_hash, verify_access_token
from orders.store.db import Database
from tests.auth_fixtures import OAuthWorld, basic, build_oauth_world
from tests.factories import db_snapshot


@pytest.fixture
def o(db: Database) -> OAuthWorld:
    """Clients of every kind and a shopper account."""
    return build_oauth_world(db)


def _merchant_token(client: FlaskClient, o: OAuthWorld, **data: str) -> dict[str, object]:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **data},
        headers=basic(o.merchant, o.merchant_secret),
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.get_json()
    return body


def _alexa_token(db: Database, o: OAuthWorld) -> tuple[str, str]:
    with db.write() as session:
        issued = issue_token(
            session, client_id=o.alexa, kind="shopper", scope="orders:read",
            shopper_id=o.world.shopper_id, store_id=o.world.store_id,
        )  # fmt: skip
    assert issued.refresh_token is not None
    return issued.access_token, issued.refresh_token


def test_merchant_api_client_gets_a_store_token(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """client_credentials → kind merchant, the client's store, its scopes, no refresh."""
    body = _merchant_token(client, o)
    assert "refresh_token" not in body
    assert set(str(body["scope"]).split()) == set(MERCHANT_SCOPES.split())
    principal = verify_access_token(db, str(body["access_token"]), "orders:read")
    assert (principal.kind, principal.store_id) == ("merchant", o.world.store_id)


def test_merchant_client_may_ask_for_less_but_not_more(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """scope=orders:read is granted alone; orders:place → invalid_scope, nothing stored."""
    assert _merchant_token(client, o, scope="orders:read")["scope"] == "orders:read"
    before = db_snapshot(db)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "orders:place"},
        headers=basic(o.merchant, o.merchant_secret),
    )
    assert response.get_json()["error"] == "invalid_scope"
    assert db_snapshot(db) == before


def test_client_credentials_refused_to_other_clients(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Alexa → unauthorized_client; a device (public) → invalid_client; bad secret → 401."""
    before = db_snapshot(db)
    alexa = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers=basic(o.alexa, o.alexa_secret))  # fmt: skip
    assert alexa.get_json()["error"] == "unauthorized_client"
    device = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                               "client_id": o.button})  # fmt: skip
    assert device.get_json()["error"] == "invalid_client"
    wrong = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers=basic(o.merchant, "not-the-secret"))  # fmt: skip
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    assert db_snapshot(db) == before


def test_revoking_an_access_token_ends_it_at_once(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """POST /oauth/revoke → 200 and verify_access_token refuses it immediately."""
    access, _refresh = _alexa_token(db, o)
    verify_access_token(db, access)
    response = client.post(
        "/oauth/revoke",
        data={"token": access, "token_type_hint": "access_token"},
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert response.status_code == 200
    with pytest.raises(InvalidToken):
        verify_access_token(db, access)


def test_revoking_a_refresh_token_ends_its_family(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Revoking the refresh token also ends the access token issued with it."""
    access, refresh = _alexa_token(db, o)
    response = client.post("/oauth/revoke", data={"token": refresh},
                           headers=basic(o.alexa, o.alexa_secret))  # fmt: skip
    assert response.status_code == 200
    with pytest.raises(InvalidToken):
        verify_access_token(db, access)
    again = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert again.get_json()["error"] == "invalid_grant"


def test_revoking_an_unknown_token_is_200_and_changes_nothing(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """RFC 7009 2.2: an invalid token is not an error for the caller."""
    before = db_snapshot(db)
    response = client.post("/oauth/revoke", data={"token": "y" * 43},
                           headers=basic(o.alexa, o.alexa_secret))  # fmt: skip
    assert response.status_code == 200
    assert db_snapshot(db) == before


def test_a_client_cannot_revoke_another_clients_token(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The merchant client presenting Alexa's token is refused and the token lives on."""
    access, _refresh = _alexa_token(db, o)
    response = client.post("/oauth/revoke", data={"token": access},
                           headers=basic(o.merchant, o.merchant_secret))  # fmt: skip
    assert response.status_code == 400
    verify_access_token(db, access)


def test_revoke_needs_client_authentication(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Without credentials (or with Alexa's id but no secret) → invalid_client."""
    access, _refresh = _alexa_token(db, o)
    for data in ({"token": access}, {"token": access, "client_id": o.alexa}):
        response = client.post("/oauth/revoke", data=data)
        assert response.get_json()["error"] == "invalid_client"
    verify_access_token(db, access)


def test_introspection_describes_an_active_token_to_its_client(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Active token → active, scope, client_id, exp, sub; after revoke → active false only."""
    body = _merchant_token(client, o)
    auth = basic(o.merchant, o.merchant_secret)
    seen = client.post("/oauth/introspect", data={"token": body["access_token"]}, headers=auth)
    info = seen.get_json()
    assert info["active"] is True and info["client_id"] == o.merchant
    assert info["sub"] == f"store:{o.world.store_id}" and info["exp"] > info["iat"]
    client.post("/oauth/revoke", data={"token": body["access_token"]}, headers=auth)
    gone = client.post("/oauth/introspect", data={"token": body["access_token"]}, headers=auth)
    assert gone.get_json() == {"active": False}


def test_introspection_needs_an_authenticated_caller(client: FlaskClient, o: OAuthWorld) -> None:
    """No credentials, or a public client id alone → 401/400 invalid_client, no token details."""
    for data, headers in (({"token": "x" * 43}, {}),
                          ({"token": "x" * 43, "client_id": o.button}, {})):  # fmt: skip
        response = client.post("/oauth/introspect", data=data, headers=headers)
        assert response.get_json()["error"] == "invalid_client"


def test_introspection_hides_other_clients_tokens(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The merchant client asking about Alexa's live token hears only active=false."""
    access, _refresh = _alexa_token(db, o)
    response = client.post("/oauth/introspect", data={"token": access},
                           headers=basic(o.merchant, o.merchant_secret))  # fmt: skip
    assert response.get_json() == {"active": False}


def test_tokens_are_256_bit_random_and_stored_only_as_hashes(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """43+ URL-safe characters (≥ 256 bits); the database holds the SHA-256, never the token."""
    body = _merchant_token(client, o)
    access = str(body["access_token"])
    assert len(access) >= 43
    dumped = repr(db_snapshot(db))
    assert access not in dumped
    assert token_hash(access) in dumped
