"""A disabled account's device stops at the hub's press batch at once (issue #14, Low)."""

from __future__ import annotations

from aiocoap.numbers.codes import Code
from sqlalchemy import update

from auth.model import Account
from orders.store.db import Database
from orders.store.model import Order
from tests.e2e.hub_fixtures import CoapClient, build_devices, client, hub
from tests.factories import count, db_snapshot

__all__ = ["client", "hub"]  # fixtures used by name


def test_a_disabled_shoppers_device_presses_are_refused_and_change_nothing(
    db: Database, client: CoapClient
) -> None:
    """Pressing works, the account is disabled, the next press is 4.01 and nothing changes."""
    devices = build_devices(db)
    with db.write() as session:
        account = Account(
            email="owner@shop.test", password_hash="x", shopper_id=devices.world.shopper_id
        )
        session.add(account)
    first = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert first.code == Code.CREATED and count(db, Order) == 1
    with db.write() as session:
        session.execute(
            update(Account)
            .where(Account.shopper_id == devices.world.shopper_id)
            .values(disabled=True)
        )
    before = db_snapshot(db)
    again = client.post("/press", {"at": devices.button_token, "seq": 2})
    assert again.code == Code.UNAUTHORIZED and again.body["error"] == "invalid_token"
    assert db_snapshot(db) == before
