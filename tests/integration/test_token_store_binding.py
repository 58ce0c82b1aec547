"""Shopper tokens are bound to the store of the client that issued them (issue #14, item 3)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth.model import Account, OAuthClient
from auth.tokens import issue_token, verify_access_token
from orders.services.lifecycle import Actor, get_order
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database
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
from tests.factories import db_snapshot
from tests.voice_fixtures import VOICE_SETTINGS, Conversation, flask_sender, intent, speech_of


@dataclass(frozen=True)
class TwoStores:
    """Stores A and B, a shopper account of A, and one order of that shopper in each store."""

    a: OAuthWorld
    b: OAuthWorld
    shopper_id: int
    order_in_a: str
    order_in_b: str


@pytest.fixture
def two(db: Database) -> TwoStores:
    """Two stores, each with its own Alexa client; the shopper has ordered in both."""
    a, b = build_oauth_world(db, "a"), build_oauth_world(db, "b")
    with db.read() as session:
        shopper_id = session.scalar(
            select(Account.shopper_id).where(Account.id == a.shopper_account_id)
        )
    assert shopper_id is not None
    placed = [
        place_order(db, OrderRequest(w.world.store_id, shopper_id, "web", (LineRequest("AA", 1),)))
        for w in (a, b)
    ]
    return TwoStores(a, b, shopper_id, placed[0].order.id, placed[1].order.id)


def _link_through(client: FlaskClient, store: OAuthWorld, account_id: int) -> str:
    """Account linking through `store`'s Alexa client, signed in as `account_id`: the token."""
    verifier, challenge = pkce_pair()
    login_as(client, account_id)
    code = query_of(consent(client, code_params(store, challenge)))["code"]
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": ALEXA_REDIRECT,
              "code_verifier": verifier},
        headers=basic(store.alexa, store.alexa_secret),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    token: str = response.get_json()["access_token"]
    return token


def test_a_token_from_store_bs_alexa_client_does_not_list_store_as_orders(
    client: FlaskClient, db: Database, two: TwoStores
) -> None:
    """The attack: link through store B's Alexa client, then ask the API for orders."""
    token = _link_through(client, two.b, two.a.shopper_account_id)
    assert verify_access_token(db, token).store_id == two.b.world.store_id
    response = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert [o["id"] for o in response.get_json()["orders"]] == [two.order_in_b]


def test_the_skill_neither_speaks_nor_cancels_another_stores_orders(
    client: FlaskClient, db: Database, two: TwoStores, app_factory: AppFactory
) -> None:
    """Through store B's link the skill reads only B's orders and cannot cancel A's."""
    token = _link_through(client, two.b, two.a.shopper_account_id)
    talk = Conversation(flask_sender(app_factory(db, **VOICE_SETTINGS)), token)
    status = speech_of(talk.say(intent("OrderStatusIntent")))
    assert "You have one open order" in status
    offered = talk.say(intent("CancelOrderIntent"))
    assert offered["sessionAttributes"]["pending"]["order"] == two.order_in_b
    before = db_snapshot(db)
    # A request whose session names store A's order (a forged or stale session attribute).
    talk.attributes = {"pending": {"kind": "cancel", "order": two.order_in_a}}
    talk.say(intent("AMAZON.YesIntent"))
    assert db_snapshot(db) == before
    assert get_order(db, two.order_in_a, Actor.shopper(two.shopper_id)).status == "placed"


def test_a_shopper_token_without_a_store_reads_no_orders(
    app: Flask, db: Database, two: TwoStores
) -> None:
    """A shopper token that names no store (issued before binding) owns no orders: 403."""
    with db.write() as session:
        token = issue_token(
            session, client_id=two.a.web, kind="shopper", scope="orders:read",
            shopper_id=two.shopper_id,
        ).access_token  # fmt: skip
    response = app.test_client().get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.mimetype == "application/problem+json"


def test_a_client_without_a_store_cannot_start_account_linking(
    client: FlaskClient, db: Database, two: TwoStores
) -> None:
    """A shopper client that belongs to no store gets no consent page and issues no code."""
    with db.write() as session:
        session.execute(
            update(OAuthClient).where(OAuthClient.client_id == two.a.alexa).values(store_id=None)
        )
    _verifier, challenge = pkce_pair()
    login_as(client, two.a.shopper_account_id)
    page = client.get("/oauth/authorize", query_string=code_params(two.a, challenge))
    assert page.status_code == 302 and "code=" not in page.headers["Location"]
    assert query_of(page)["error"] == "unauthorized_client"


def test_the_consent_page_names_the_store_and_where_the_browser_goes_next(
    client: FlaskClient, two: TwoStores
) -> None:
    """Consent says which store the link is for and the website the shopper returns to."""
    _verifier, challenge = pkce_pair()
    login_as(client, two.a.shopper_account_id)
    page = client.get("/oauth/authorize", query_string=code_params(two.b, challenge))
    assert page.status_code == 200
    assert "Store b" in page.text and "Store a" not in page.text
    assert "pitangui.amazon.com" in page.text and "goes back to the website" in page.text
