"""Builders for OAuth tests: clients of every kind, a shopper who signs in, PKCE pairs."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from auth.model import Account, OAuthClient, StoreMembership
from auth.passwords import hash_password
from auth.principal import DEVICE_SCOPES, MERCHANT_SCOPES, SHOPPER_SCOPES
from auth.tokens import token_hash
from orders.services.addresses import add_address
from orders.store.db import Database
from orders.store.model import Shopper
from tests.factories import HOME, World, build_world
from tests.web_helpers import csrf_token

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD = "correct horse battery staple"
ALEXA_REDIRECT = "https://pitangui.amazon.com/api/skill/link/TEST"
WEB_REDIRECT = "http://127.0.0.1:9999/callback"


@dataclass(frozen=True)
class OAuthWorld:
    """A store with clients of every kind and a shopper account."""

    world: World
    button: str
    appliance: str
    alexa: str
    alexa_secret: str
    web: str
    merchant: str
    merchant_secret: str
    shopper_email: str
    shopper_account_id: int
    merchant_email: str
    merchant_account_id: int


_HASHES: dict[str, str] = {}


def password_hash() -> str:
    """PASSWORD's argon2 hash, computed once per run (argon2 is slow on purpose)."""
    if PASSWORD not in _HASHES:
        _HASHES[PASSWORD] = hash_password(PASSWORD)
    return _HASHES[PASSWORD]


def login_as(client: FlaskClient, account_id: int) -> None:
    """Put a Flask-Login session on `client` (for tests whose subject isn't signing in)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(account_id)
        session["_fresh"] = True


def build_oauth_world(db: Database, slug: str = "shop") -> OAuthWorld:
    """`build_world` plus OAuth clients rows (inserted directly) and two accounts."""
    world = build_world(db, slug=slug)
    alexa_secret = secrets.token_urlsafe(32)
    merchant_secret = secrets.token_urlsafe(32)
    alexa, web, merchant = f"alexa-{slug}", f"web-{slug}", f"api-{slug}"
    with db.write() as session:
        for client_id, name in ((world.model_client_id, "Button"),
                                (world.appliance_client_id, "Coffee machine")):  # fmt: skip
            session.add(
                OAuthClient(
                    client_id=client_id,
                    name=name,
                    kind="device_model",
                    store_id=world.store_id,
                    grant_types=[DEVICE_GRANT, "refresh_token"],
                    scope=DEVICE_SCOPES,
                )
            )
        session.add(
            OAuthClient(
                client_id=alexa,
                client_secret_hash=token_hash(alexa_secret),
                name="Alexa",
                kind="alexa",
                store_id=world.store_id,
                redirect_uris=[ALEXA_REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                scope=SHOPPER_SCOPES,
                token_endpoint_auth_method="client_secret_basic",
            )
        )
        session.add(
            OAuthClient(
                client_id=web,
                name="Shopping web app",
                kind="web",
                store_id=world.store_id,
                redirect_uris=[WEB_REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                scope=SHOPPER_SCOPES,
            )
        )
        session.add(
            OAuthClient(
                client_id=merchant,
                client_secret_hash=token_hash(merchant_secret),
                name="Merchant API",
                kind="merchant_api",
                store_id=world.store_id,
                grant_types=["client_credentials"],
                scope=MERCHANT_SCOPES,
                token_endpoint_auth_method="client_secret_basic",
            )
        )
        person = Shopper(name="Sam", email=f"shopper@{slug}.test")
        session.add(person)
        session.flush()
        add_address(session, person.id, HOME)
        shopper = Account(
            email=f"shopper@{slug}.test", password_hash=password_hash(), shopper_id=person.id
        )
        staff = Account(email=f"merchant@{slug}.test", password_hash=password_hash())
        session.add_all([shopper, staff])
        session.flush()
        session.add(StoreMembership(account_id=staff.id, store_id=world.store_id, role="owner"))
    return OAuthWorld(
        world, world.model_client_id, world.appliance_client_id, alexa, alexa_secret, web,
        merchant, merchant_secret, f"shopper@{slug}.test", shopper.id, f"merchant@{slug}.test",
        staff.id,
    )  # fmt: skip


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def query_of(response: TestResponse) -> dict[str, str]:
    """The query parameters of a redirect's Location."""
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def consent(client: FlaskClient, params: dict[str, str], decision: str = "approve") -> TestResponse:
    """Open the consent page for `params` and submit `decision` with its CSRF token."""
    page = client.get("/oauth/authorize", query_string=params)
    assert page.status_code == 200, page.text
    return client.post(
        "/oauth/authorize",
        query_string=params,
        data={"decision": decision, "csrf_token": csrf_token(page.text)},
    )


def code_params(o: OAuthWorld, challenge: str, **extra: str) -> dict[str, str]:
    """Authorization request parameters for the Alexa client."""
    params = {
        "response_type": "code",
        "client_id": o.alexa,
        "redirect_uri": ALEXA_REDIRECT,
        "scope": "orders:place orders:read",
        "state": "st-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return params
