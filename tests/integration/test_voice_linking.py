"""Account linking end to end: a code + PKCE token from the Alexa client works at /alexa."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from orders.store.db import Database
from orders.store.model import Order
from tests.auth_fixtures import (
    ALEXA_REDIRECT,
    OAuthWorld,
    basic,
    build_oauth_world,
    code_params,
    consent,
    login_as,
    pkce_pair,
    query_of,
)
from tests.conftest import AppFactory
from tests.voice_fixtures import Conversation, intent, speech_of

SCOPES = "orders:place orders:read supplies:read"


@pytest.fixture
def client(app_factory: AppFactory, db: Database) -> FlaskClient:
    """The whole app, Alexa signature checks off (the linking is what is under test)."""
    return app_factory(db, alexa_verify=False).test_client()


def _link(client: FlaskClient, o: OAuthWorld) -> str:
    """What Alexa does when the shopper links: consent, code, token exchange with PKCE."""
    verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    approved = consent(client, code_params(o, challenge, scope=SCOPES))
    assert approved.status_code == 302, approved.text
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(approved)["code"],
            "redirect_uri": ALEXA_REDIRECT,
            "code_verifier": verifier,
        },
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert token.status_code == 200, token.text
    return str(token.get_json()["access_token"])


def _talk(client: FlaskClient, token: str) -> Conversation:
    def send(body: bytes) -> tuple[int, dict[str, Any]]:
        response = client.post("/alexa", data=body, content_type="application/json")
        return response.status_code, response.get_json()

    return Conversation(send, token)


def test_a_token_from_account_linking_buys_in_the_alexa_clients_store(
    client: FlaskClient, db: Database
) -> None:
    """The shopper who consented orders, by voice, from the store the Alexa client belongs to."""
    o = build_oauth_world(db)
    talk = _talk(client, _link(client, o))
    assert "2 coffee pods" in speech_of(
        talk.say(intent("BuyIntent", quantity="2", product="coffee"))
    )
    assert "Done" in speech_of(talk.say(intent("AMAZON.YesIntent")))
    with db.read() as session:
        order = session.scalars(select(Order)).one()
    assert order.channel == "voice" and order.store_id == o.world.store_id
    assert order.shopper_id != o.world.shopper_id  # the linked account's shopper, not Ada


def test_after_the_token_is_revoked_the_skill_asks_to_link_again(
    client: FlaskClient, db: Database
) -> None:
    """Revocation (RFC 7009) is seen by the very next spoken request."""
    o = build_oauth_world(db)
    token = _link(client, o)
    talk = _talk(client, token)
    assert "no open orders" in speech_of(talk.say(intent("OrderStatusIntent")))
    revoked = client.post(
        "/oauth/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert revoked.status_code == 200
    answer = talk.say(intent("OrderStatusIntent"))
    assert answer["response"]["card"]["type"] == "LinkAccount"
