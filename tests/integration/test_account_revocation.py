"""Tokens end with their account or their client's secret (issue #14, Low items)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from auth.clients import rotate_secret
from auth.model import Account
from auth.principal import DEVICE_SCOPES, InvalidToken
from auth.tokens import issue_token, verify_access_token, verify_access_tokens
from orders.services.devices import LinkRules, link_device, register_device
from orders.store.db import Database, utcnow
from orders.store.model import DeviceModel, Shopper
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
from tests.web_helpers import csrf_token


@pytest.fixture
def o(db: Database) -> OAuthWorld:
    """Clients of every kind and a shopper account."""
    return build_oauth_world(db)


def _linked_through_alexa(client: FlaskClient, o: OAuthWorld) -> dict[str, str]:
    """The token response of real account linking (consent, code, PKCE) for o's shopper."""
    verifier, challenge = pkce_pair()
    login_as(client, o.shopper_account_id)
    code = query_of(consent(client, code_params(o, challenge)))["code"]
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": ALEXA_REDIRECT,
              "code_verifier": verifier},
        headers=basic(o.alexa, o.alexa_secret),
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.get_json()
    return body


def _device_token(db: Database, o: OAuthWorld, account_id: int) -> str:
    """A device of this account's shopper, linked, and its device token."""
    with db.write() as session:
        shopper_id = session.scalar(select(Account.shopper_id).where(Account.id == account_id))
        shopper = session.get(Shopper, shopper_id)
        model = session.scalar(select(DeviceModel).where(DeviceModel.client_id == o.button))
        assert shopper is not None and model is not None
        device = register_device(session, model, f"SN-{account_id}")
        link = link_device(session, device, shopper, LinkRules(product_sku="PODS"))
        return issue_token(
            session, client_id=o.button, kind="device", scope=DEVICE_SCOPES,
            shopper_id=shopper.id, store_id=o.world.store_id, device_id=device.id,
            link_id=link.id,
        ).access_token  # fmt: skip


def _refused(db: Database, token: str) -> bool:
    try:
        verify_access_token(db, token)
    except InvalidToken:
        return True
    return False


def test_disabling_an_account_stops_its_tokens_at_once(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Access, refresh and device tokens of a disabled shopper stop; others' keep working."""
    linked = _linked_through_alexa(client, o)
    device = _device_token(db, o, o.shopper_account_id)
    other = build_oauth_world(db, "other")
    bystander = _device_token(db, other, other.shopper_account_id)
    mine = [linked["access_token"], device]
    assert not any(_refused(db, token) for token in [*mine, bystander])

    with db.write() as session:
        session.execute(
            update(Account).where(Account.id == o.shopper_account_id).values(disabled=True)
        )

    assert all(_refused(db, token) for token in mine)
    assert not _refused(db, bystander)
    with db.engine.connect() as conn:
        verdicts = verify_access_tokens(conn, [*mine, bystander], None, now=utcnow())
    assert [isinstance(v, InvalidToken) for v in verdicts] == [True, True, False]
    api = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {mine[0]}"})
    assert api.status_code == 401
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": linked["refresh_token"]},
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    seen = client.post(
        "/oauth/introspect",
        data={"token": linked["refresh_token"]},
        headers=basic(o.alexa, o.alexa_secret),
    )
    assert seen.get_json() == {"active": False}


def test_rotating_a_client_secret_revokes_the_tokens_issued_to_it(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """Rotating Alexa's secret ends Alexa's tokens (access and refresh), and only those."""
    linked = _linked_through_alexa(client, o)
    issued = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"},
        headers=basic(o.merchant, o.merchant_secret),
    )  # fmt: skip
    merchant_token = issued.get_json()["access_token"]

    fresh = rotate_secret(db, o.world.store_id, o.alexa)

    assert _refused(db, linked["access_token"])
    assert not _refused(db, merchant_token)
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": linked["refresh_token"]},
        headers=basic(o.alexa, fresh.client_secret),
    )
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    rotate_secret(db, o.world.store_id, o.merchant)
    assert _refused(db, merchant_token)


def test_the_integrations_page_warns_before_rotating_and_the_button_revokes(
    client: FlaskClient, db: Database, o: OAuthWorld
) -> None:
    """The merchant reads that rotating signs Alexa shoppers out, then rotates from the page."""
    linked = _linked_through_alexa(client, o)
    login_as(client, o.merchant_account_id)
    page = client.get(f"/stores/{o.world.store_id}/integrations")
    assert page.status_code == 200
    assert "signs out every shopper linked through Alexa" in page.text
    assert "ends every token it holds" in page.text
    rotated = client.post(
        f"/stores/{o.world.store_id}/integrations/clients/{o.alexa}/rotate",
        data={"csrf_token": csrf_token(page.text)},
    )
    assert rotated.status_code == 200 and "New secret for" in rotated.text
    assert _refused(db, linked["access_token"])
