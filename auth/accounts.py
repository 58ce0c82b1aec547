"""Accounts: sign-up and login checks. No default or shared credentials exist anywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auth.model import Account, StoreMembership
from auth.passwords import check_password, hash_password
from orders.domain.errors import InvalidRequest
from orders.store.db import Database
from orders.store.model import Shopper

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD = 10


def normalize_email(email: str) -> str:
    """Trimmed and lower-cased, or InvalidRequest."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidRequest("bad_email", "that is not an email address")
    return email


def create_account(
    session: Session,
    *,
    email: str,
    password: str,
    shopper_name: str | None = None,
    store_id: int | None = None,
    role: str = "owner",
) -> Account:
    """A new account: a shopper when `shopper_name` is given, staff of `store_id` when given."""
    email = normalize_email(email)
    check_new_password(password)
    if _taken(session, email):
        raise InvalidRequest("email_taken", "an account with that email exists")
    account = _add_account(session, email, hash_password(password), shopper_name)
    if store_id is not None:
        session.add(StoreMembership(account_id=account.id, store_id=store_id, role=role))
        session.flush()
    return account


@dataclass(frozen=True)
class SignUp:
    """What a sign-up did: `created` a shopper account, or found the email registered."""

    email: str
    created: bool


def sign_up(db: Database, *, email: str, password: str, shopper_name: str) -> SignUp:
    """A new shopper account, or nothing when the email is taken: the same work either way."""
    email = normalize_email(email)
    check_new_password(password)
    # Hash before looking, so the time taken does not tell whether the email is registered.
    digest = hash_password(password)

    def work(session: Session) -> SignUp:
        if _taken(session, email):
            return SignUp(email, created=False)
        _add_account(session, email, digest, shopper_name)
        return SignUp(email, created=True)

    # races=1: a concurrent sign-up for the same email wins the unique key; we see it next.
    return db.run_write(work, races=1)


def check_new_password(password: str) -> None:
    """InvalidRequest unless the password is long enough."""
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest("weak_password", f"passwords need at least {MIN_PASSWORD} characters")


def _taken(session: Session, email: str) -> bool:
    return bool(session.scalar(select(func.count()).where(Account.email == email)))


def _add_account(
    session: Session, email: str, password_hash: str, shopper_name: str | None
) -> Account:
    account = Account(email=email, password_hash=password_hash)
    if shopper_name is not None:
        shopper = Shopper(name=shopper_name, email=email)
        session.add(shopper)
        session.flush()
        account.shopper_id = shopper.id
    session.add(account)
    session.flush()
    return account


def authenticate(db: Database, email: str, password: str) -> Account | None:
    """The account for these credentials, or None (same cost either way)."""
    try:
        email = normalize_email(email)
    except InvalidRequest:
        check_password(None, password)
        return None
    with db.read() as session:
        account = session.scalar(select(Account).where(Account.email == email))
        ok = check_password(account.password_hash if account else None, password)
        if account is None or not ok or account.disabled:
            return None
        return account


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted (tzdata ships them)."""
    return tuple(sorted(available_timezones()))


def set_time_zone(db: Database, account_id: int, zone: str | None) -> None:
    """The zone the account reads times in; None goes back to the store's."""
    if zone is not None and zone not in time_zones():
        raise InvalidRequest("bad_time_zone", "that is not a time zone we know")
    with db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise InvalidRequest("no_account", "that account no longer exists")
        account.time_zone = zone
