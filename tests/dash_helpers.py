"""Dashboard test data: two stores with merchants, a shopper account with a linked button."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from auth.model import Account, StoreMembership
from orders.services.ordering import press
from orders.store.db import Database, utcnow
from orders.store.model import SupplyReading
from tests.factories import World, build_world
from tests.web_helpers import csrf_token, sign_in

PASSWORD = "a long enough password"
# Cheap argon2 parameters for test accounts only: the app's verifier reads the parameters
# from the hash itself, so sign-in works the same and each test saves ~0.5 s of hashing.
_CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


@dataclass(frozen=True)
class Tenants:
    """Our store (with a shopper account and an order) and another store with its own rows."""

    ours: World
    theirs: World
    merchant_email: str
    other_merchant_email: str
    shopper_email: str
    other_shopper_email: str
    order_id: str
    their_order_id: str


def add_account(
    db: Database, email: str, *, shopper_id: int | None = None, store_id: int | None = None
) -> int:
    """An account with PASSWORD for an existing shopper and/or as owner of a store."""
    with db.write() as session:
        account = Account(email=email, password_hash=_CHEAP_HASH, shopper_id=shopper_id)
        session.add(account)
        session.flush()
        if store_id is not None:
            session.add(StoreMembership(account_id=account.id, store_id=store_id, role="owner"))
        return account.id


def add_readings(
    db: Database, device_id: int, values: list[float], *, slot: str = "pods",
    start: datetime | None = None,
) -> None:  # fmt: skip
    """Telemetry for one slot, an hour apart, ending now."""
    start = start or utcnow() - timedelta(hours=len(values))
    with db.write() as session:
        for i, value in enumerate(values):
            session.add(
                SupplyReading(device_id=device_id, slot=slot, value=value, unit="count",
                              measured_at=start + timedelta(hours=i))
            )  # fmt: skip


def build_tenants(db: Database) -> Tenants:
    """Two stores, each with a merchant, a shopper account, a linked button and one order."""
    ours = build_world(db, slug="ours")
    theirs = build_world(db, slug="theirs")
    add_account(db, "merchant@ours.test", store_id=ours.store_id)
    add_account(db, "merchant@theirs.test", store_id=theirs.store_id)
    add_account(db, "ada@ours.test", shopper_id=ours.shopper_id)
    add_account(db, "ada@theirs.test", shopper_id=theirs.shopper_id)
    order = press(db, ours.device_id, 1).order
    their_order = press(db, theirs.device_id, 1).order
    return Tenants(
        ours, theirs, "merchant@ours.test", "merchant@theirs.test", "ada@ours.test",
        "ada@theirs.test", order.id, their_order.id,
    )  # fmt: skip


def form_post(client: FlaskClient, url: str, data: dict[str, object] | None = None) -> TestResponse:
    """POST a dashboard form with the session's CSRF token (read from the home page)."""
    token = csrf_token(client.get("/").text)
    return client.post(url, data={"csrf_token": token, **(data or {})})


def signed_in(app: Flask, email: str) -> FlaskClient:
    """A fresh test client signed in as `email`."""
    client = app.test_client()
    sign_in(client, email, PASSWORD)
    return client
