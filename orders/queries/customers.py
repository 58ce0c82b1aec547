"""Who an order is for, as its store sees them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from orders.store.db import Database
from orders.store.model import Shopper


@dataclass(frozen=True)
class Customer:
    """The shopper an order is for: a name, and an e-mail unless they were erased."""

    name: str
    email: str | None


def customer_of(db: Database, shopper_id: int | None) -> Customer | None:
    """The customer of an order the caller may already see (None: an order of nobody)."""
    if shopper_id is None:
        return None
    with db.read() as session:
        row = session.execute(
            select(Shopper.name, Shopper.email).where(Shopper.id == shopper_id)
        ).first()
    return Customer(row.name, row.email) if row is not None else None
