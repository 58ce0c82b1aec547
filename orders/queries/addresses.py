"""A shopper's delivery addresses as the pages and the export show them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from orders.domain.addresses import ShipTo
from orders.domain.errors import NotFound
from orders.store.db import Database
from orders.store.model import Address


@dataclass(frozen=True)
class AddressView:
    """One saved address, and whether orders ship to it by default."""

    id: int
    address: ShipTo
    is_default: bool

    def fields(self) -> dict[str, str]:
        """The address as a form's fields (empty strings for what is not set)."""
        return {key: value or "" for key, value in self.address.as_dict().items()}


def view_of(row: Address) -> AddressView:
    """A row as a view."""
    address = ShipTo(
        name=row.name,
        line1=row.line1,
        city=row.city,
        country=row.country,
        line2=row.line2,
        postcode=row.postcode,
        region=row.region,
        phone=row.phone,
    )
    return AddressView(row.id, address, row.is_default)


def my_addresses(db: Database, shopper_id: int) -> list[AddressView]:
    """The shopper's addresses, the default first, then newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(Address)
            .where(Address.shopper_id == shopper_id)
            .order_by(Address.is_default.desc(), Address.created_at.desc(), Address.id.desc())
        )
        return [view_of(row) for row in rows]


def my_address(db: Database, shopper_id: int, address_id: int) -> AddressView:
    """One of the shopper's addresses, or NotFound."""
    with db.read() as session:
        row = session.scalar(
            select(Address).where(Address.id == address_id, Address.shopper_id == shopper_id)
        )
        if row is None:
            raise NotFound("not_found", "no such address")
        return view_of(row)
