"""A store's shared secrets for carrier aggregators' signed webhooks."""

from __future__ import annotations

from sqlalchemy import select

from orders.domain.errors import InvalidRequest
from orders.store.db import Database
from orders.store.model import CarrierHook

AGGREGATORS = ("easypost",)
MIN_SECRET, MAX_SECRET = 16, 200


def set_carrier_secret(db: Database, store_id: int, aggregator: str, secret: str) -> None:
    """Set (or replace) the secret the aggregator signs this store's webhooks with."""
    if aggregator not in AGGREGATORS:
        raise InvalidRequest("unknown_aggregator", f"aggregators: {', '.join(AGGREGATORS)}")
    secret = secret.strip()
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise InvalidRequest("bad_secret", f"a secret is {MIN_SECRET} to {MAX_SECRET} characters")
    with db.write() as session:
        hook = session.get(CarrierHook, (store_id, aggregator))
        if hook is None:
            session.add(CarrierHook(store_id=store_id, aggregator=aggregator, secret=secret))
        else:
            hook.secret = secret


def carrier_secret(db: Database, store_id: int, aggregator: str) -> str | None:
    """The store's secret for that aggregator, or None when the merchant set none."""
    with db.read() as session:
        return session.scalar(
            select(CarrierHook.secret).where(
                CarrierHook.store_id == store_id, CarrierHook.aggregator == aggregator
            )
        )
