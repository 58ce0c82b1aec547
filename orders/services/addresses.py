"""A shopper's delivery addresses: add, edit, delete, choose the default.

Orders copy the address they ship to when placed (`decision.decide`), so nothing here
ever changes an order already placed.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from orders.domain.addresses import ShipTo, check_address
from orders.domain.errors import NotFound
from orders.queries.addresses import AddressView, view_of
from orders.store.db import Database
from orders.store.model import Address, DeviceLink, Shopper

Fields = Mapping[str, str | None]


def add_address(
    session: Session, shopper_id: int, fields: Fields, *, make_default: bool = False
) -> Address:
    """Add an address in the caller's transaction; a shopper's first one is their default."""
    clean = check_address(dict(fields))
    _lock_shopper(session, shopper_id)
    has_default = session.scalar(
        select(Address.id).where(Address.shopper_id == shopper_id, Address.is_default.is_(True))
    )
    if make_default and has_default is not None:
        _clear_default(session, shopper_id)
    address = Address(
        shopper_id=shopper_id,
        is_default=make_default or has_default is None,
        **clean.as_dict(),
    )
    session.add(address)
    session.flush()
    return address


def add_my_address(
    db: Database, shopper_id: int, fields: Fields, *, make_default: bool = False
) -> AddressView:
    """Add one of the shopper's addresses."""
    return db.run_write(
        lambda s: view_of(add_address(s, shopper_id, fields, make_default=make_default))
    )


def edit_address(
    db: Database, shopper_id: int, address_id: int, fields: Fields, *, make_default: bool = False
) -> AddressView:
    """Change one of the shopper's addresses; orders already placed keep their copy."""
    clean = check_address(dict(fields))

    def work(session: Session) -> AddressView:
        address = _mine(session, shopper_id, address_id)
        if make_default and not address.is_default:
            _clear_default(session, shopper_id)
            address.is_default = True
        _copy(clean, address)
        session.flush()
        return view_of(address)

    return db.run_write(work)


def make_default(db: Database, shopper_id: int, address_id: int) -> None:
    """Make one of the shopper's addresses the default (the one orders ship to)."""

    def work(session: Session) -> None:
        address = _mine(session, shopper_id, address_id)
        # The old default goes first: the database allows one default per shopper.
        _clear_default(session, shopper_id)
        address.is_default = True
        session.flush()

    db.run_write(work)


def delete_address(db: Database, shopper_id: int, address_id: int) -> None:
    """Delete one of the shopper's addresses; the newest other one becomes the default."""

    def work(session: Session) -> None:
        address = _mine(session, shopper_id, address_id)
        was_default = address.is_default
        # Links that named it ship to the default again (the foreign key says so too).
        session.execute(
            update(DeviceLink).where(DeviceLink.address_id == address.id).values(address_id=None)
        )
        session.delete(address)
        session.flush()
        if was_default:
            successor = session.scalar(
                select(Address)
                .where(Address.shopper_id == shopper_id)
                .order_by(Address.created_at.desc(), Address.id.desc())
                .limit(1)
            )
            if successor is not None:
                successor.is_default = True
                session.flush()

    db.run_write(work)


def my_address_id(session: Session, shopper_id: int, address_id: int) -> int:
    """`address_id` if it is one of the shopper's addresses, else NotFound."""
    found = session.scalar(
        select(Address.id).where(Address.id == address_id, Address.shopper_id == shopper_id)
    )
    if found is None:
        raise NotFound("not_found", "no such address")
    return found


def _mine(session: Session, shopper_id: int, address_id: int) -> Address:
    _lock_shopper(session, shopper_id)
    address = session.scalar(
        select(Address).where(Address.id == address_id, Address.shopper_id == shopper_id)
    )
    if address is None:  # another shopper's address is indistinguishable from none
        raise NotFound("not_found", "no such address")
    return address


def _lock_shopper(session: Session, shopper_id: int) -> None:
    """Changes to one shopper's addresses go one at a time (the one-default rule)."""
    found = session.scalar(select(Shopper.id).where(Shopper.id == shopper_id).with_for_update())
    if found is None:
        raise NotFound("not_found", "no such shopper")


def _clear_default(session: Session, shopper_id: int) -> None:
    session.execute(
        update(Address)
        .where(Address.shopper_id == shopper_id, Address.is_default.is_(True))
        .values(is_default=False)
    )
    session.flush()


def _copy(clean: ShipTo, address: Address) -> None:
    for key, value in clean.as_dict().items():
        setattr(address, key, value)
