"""The /link confirmation page: a device's orders may ship to one of the shopper's
addresses; a shopper without one is asked to add one."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from auth.model import Account
from orders.services.addresses import add_address
from orders.store.db import Database
from orders.store.model import Address, DeviceLink
from tests.auth_fixtures import OAuthWorld, build_oauth_world, login_as
from tests.factories import HOME
from tests.web_helpers import csrf_token


def _code(client: FlaskClient, o: OAuthWorld) -> str:
    started = client.post(
        "/oauth/device_authorization", data={"client_id": o.button, "serial": "SN-NEW"}
    )
    assert started.status_code == 200, started.text
    return str(started.get_json()["user_code"])


def _confirmation(client: FlaskClient, user_code: str) -> str:
    token = csrf_token(client.get("/link").text)
    page = client.post("/link", data={"user_code": user_code, "csrf_token": token})
    assert page.status_code == 200, page.text
    return page.text


def _shopper_id(db: Database, o: OAuthWorld) -> int:
    with db.read() as session:
        found = session.scalar(select(Account.shopper_id).where(Account.id == o.shopper_account_id))
    assert found is not None
    return found


def test_a_link_may_name_one_of_the_shoppers_addresses(client: FlaskClient, db: Database) -> None:
    """The page offers the shopper's addresses; the one chosen is the link's."""
    o = build_oauth_world(db)
    with db.write() as session:
        office = add_address(session, _shopper_id(db, o), {**HOME, "line1": "1 Office Park"})
        office_id = office.id
    login_as(client, o.shopper_account_id)
    user_code = _code(client, o)
    page = _confirmation(client, user_code)
    assert 'name="address"' in page and "1 Office Park" in page
    done = client.post("/link", data={
        "user_code": user_code, "decision": "approve", "product": "PODS",
        "address": str(office_id), "csrf_token": csrf_token(page),
    })  # fmt: skip
    assert done.status_code == 200, done.text
    with db.read() as session:
        linked = session.scalars(
            select(DeviceLink.address_id).where(DeviceLink.shopper_id == _shopper_id(db, o))
        ).all()
    assert linked == [office_id]


def test_a_shopper_without_an_address_is_sent_to_add_one_from_the_link_page(
    client: FlaskClient, db: Database
) -> None:
    """The page says the device can't order yet and links to the address form, back here."""
    o = build_oauth_world(db)
    with db.write() as session:
        session.execute(Address.__table__.delete())
    login_as(client, o.shopper_account_id)
    page = _confirmation(client, _code(client, o))
    assert "no delivery address" in page
    assert "/my/addresses/new?next=/link%3Fuser_code%3D" in page


def test_a_link_approved_without_naming_an_address_ships_to_the_default(
    client: FlaskClient, db: Database
) -> None:
    """The field is optional (CONTRACT names only product and decision): address_id None."""
    o = build_oauth_world(db)
    login_as(client, o.shopper_account_id)
    user_code = _code(client, o)
    page = _confirmation(client, user_code)
    done = client.post("/link", data={
        "user_code": user_code, "decision": "approve", "product": "PODS",
        "csrf_token": csrf_token(page),
    })  # fmt: skip
    assert done.status_code == 200, done.text
    with db.read() as session:
        linked = session.scalars(
            select(DeviceLink.address_id).where(DeviceLink.shopper_id == _shopper_id(db, o))
        ).all()
    assert linked == [None]
