"""Ending links and accounts: the domain change and the token revocation in ONE transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from auth.device_flow import unlink_device
from auth.model import Account, Token
from auth.tokens import revoke_link_tokens
from orders.domain.errors import NotFound
from orders.services.devices import active_link
from orders.services.merchant import device_in_store
from orders.services.privacy import export_shopper, forget_shopper
from orders.services.shopper import my_link
from orders.store.db import Database, utcnow


def unlink_my_device(
    db: Database, shopper_id: int, device_id: int, *, now: datetime | None = None
) -> None:
    """The shopper unlinks one of their devices; its tokens die with the link."""

    def work(session: Session) -> None:
        moment = now or utcnow()
        unlink_device(session, my_link(session, shopper_id, device_id), now=moment)

    db.run_write(work)


def revoke_store_device(
    db: Database, store_id: int, device_id: int, *, now: datetime | None = None
) -> bool:
    """The merchant revokes a device of their store; False when it was not linked."""

    def work(session: Session) -> bool:
        moment = now or utcnow()
        device = device_in_store(session, store_id, device_id)
        link = active_link(session, device.id)
        if link is None:
            return False
        unlink_device(session, link, now=moment)
        return True

    return db.run_write(work)


def export_account(db: Database, account_id: int) -> dict[str, Any]:
    """Everything held about a shopper account, as JSON-ready data."""
    with db.read() as session:
        account = _account(session, account_id)
        data = export_shopper(session, account.shopper_id) if account.shopper_id else {}
        return {"account": {"email": account.email, "created": _iso(account.created_at)}, **data}


def delete_account(db: Database, account_id: int, *, now: datetime | None = None) -> None:
    """Delete a shopper's account: every device unlinked and its tokens revoked, every
    token of theirs revoked, personal data scrubbed, the login removed. Their orders stay
    for the merchant under an anonymous tombstone shopper."""

    def work(session: Session) -> None:
        moment = now or utcnow()
        account = _account(session, account_id)
        if account.shopper_id is not None:
            for link_id in forget_shopper(session, account.shopper_id, now=moment):
                revoke_link_tokens(session, link_id, now=moment)
            session.execute(
                update(Token)
                .where(Token.shopper_id == account.shopper_id, Token.revoked_at.is_(None))
                .values(revoked_at=moment)
                .execution_options(synchronize_session=False)
            )
        # Tokens, device codes, authorization codes and memberships cascade with it.
        session.execute(delete(Account).where(Account.id == account.id))

    db.run_write(work)


def _account(session: Session, account_id: int) -> Account:
    account = session.scalar(select(Account).where(Account.id == account_id))
    if account is None:
        raise NotFound("not_found", "no such account")
    return account


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
