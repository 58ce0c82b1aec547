"""The device authorization grant (RFC 8628) as plain functions over the database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from auth.link_attempts import record_attempt
from auth.model import Account, DeviceCode, OAuthClient
from auth.oauth_store import GrantError, find_client, rotate_refresh_token
from auth.principal import DEVICE_SCOPES, OAuthError
from auth.tokens import IssuedToken, issue_token, new_secret, revoke_link_tokens, token_hash
from auth.unit_secrets import check_unit_secret
from orders.domain.errors import InvalidRequest, NotAllowed
from orders.services.devices import (
    LinkRules,
    active_link,
    link_device,
    may_link,
    register_device,
    unlink,
)
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, DeviceModel, Product, Shopper, Store

USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: no vowels, no look-alikes
USER_CODE_LENGTH = 8
DEVICE_CODE_TTL = timedelta(minutes=10)
POLL_INTERVAL = 5
SLOW_DOWN_STEP = 5
# Expired codes still answer `expired_token` for a while, then each new request purges a
# batch of them, so the table holds about what the last TTL + PURGE_AFTER created.
PURGE_AFTER = timedelta(minutes=10)
PURGE_BATCH = 200
# A device that restarts keeps getting fresh codes (its oldest pending ones are dropped);
# one client id can't hold more than MAX_PENDING_PER_CLIENT live codes at once.
MAX_PENDING_PER_SERIAL = 3
MAX_PENDING_PER_CLIENT = 10_000
TAKEN = (
    "This device is already linked to another account, so it was not linked to yours. "
    "Its owner can see this attempt; if the device is now yours, ask them to unlink it "
    "or ask the store to release it."
)


class DeviceFlowError(OAuthError):
    """An RFC 8628 / RFC 6749 error word for the device's poll or request."""


@dataclass(frozen=True)
class DeviceAuthorization:
    """The answer to a device authorization request (RFC 8628 §3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int

    def as_response(self) -> dict[str, object]:
        """The JSON/CBOR body."""
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": self.verification_uri_complete,
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


@dataclass(frozen=True)
class PendingDevice:
    """What the /link page shows about a device waiting for approval."""

    user_code: str
    model_name: str
    model_kind: str
    store_id: int
    serial: str | None
    products: tuple[tuple[str, str], ...]  # (sku, name and price) the model may order
    # Each slot of a multi-slot model, for a rule per slot; empty for one slot or none.
    slots: tuple[SlotChoice, ...] = ()
    suggests_parts: bool = False  # a reported fault may suggest a part order
    currency: str = ""  # the store's, for caps typed in major units
    unit: str | None = None  # the unit of an appliance's reorder point


@dataclass(frozen=True)
class SlotChoice:
    """A slot the /link page sets a rule for: what it holds and what refills it."""

    name: str
    unit: str
    capacity: float
    refill: str | None  # the refill product's name
    policy: str  # the model's default for new links


def format_user_code(code: str) -> str:
    """`BCDFGHJK` → `BCDF-GHJK`, as people see it."""
    return f"{code[:4]}-{code[4:]}"


def normalize_user_code(text: str) -> str | None:
    """Accept a user code with or without its dash, any case; None if it can't be one."""
    code = "".join(ch for ch in text.upper() if ch not in "- ")
    if len(code) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in code):
        return None
    return code


def _device_client(session: Session, client_id: str) -> tuple[OAuthClient, DeviceModel]:
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    model = session.scalar(select(DeviceModel).where(DeviceModel.client_id == client_id))
    if client is None or model is None or client.kind != "device_model":
        raise DeviceFlowError("invalid_client", "unknown device client")
    return client, model


def start_device_authorization(
    db: Database,
    *,
    client_id: str,
    public_url: str,
    serial: str | None = None,
    scope: str | None = None,
    unit_secret: str | None = None,
    now: datetime | None = None,
) -> DeviceAuthorization:
    """Begin linking a device: a device code for it, a user code for its shopper.

    A model that requires proof of possession needs the unit's provisioned `unit_secret`
    with its serial (`invalid_client` without it).
    """
    now = now or utcnow()
    if serial is not None and (not serial or len(serial) > 128 or not serial.isprintable()):
        raise DeviceFlowError("invalid_request", "serial must be 1-128 printable characters")
    if unit_secret is not None and not isinstance(unit_secret, str):
        raise DeviceFlowError("invalid_request", "unit_secret must be a string")

    def work(session: Session) -> DeviceAuthorization:
        client, model = _device_client(session, client_id)
        if model.requires_unit_secret and not check_unit_secret(
            session, model.id, serial, unit_secret
        ):
            raise DeviceFlowError("invalid_client", "this device model needs its unit secret")
        granted = client.scope or DEVICE_SCOPES
        requested = scope.split() if scope else granted.split()
        if not set(requested) <= set(granted.split()):
            raise DeviceFlowError("invalid_scope", "scope beyond what this client may ask")
        purge_device_codes(session, now)
        _make_room(session, client_id, serial, now)
        device_code = new_secret()
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
        session.add(
            DeviceCode(
                device_code_hash=token_hash(device_code),
                user_code=user_code,
                client_id=client_id,
                serial=serial,
                scope=" ".join(requested),
                interval=POLL_INTERVAL,
                created_at=now,
                expires_at=now + DEVICE_CODE_TTL,
            )
        )
        session.flush()
        shown = format_user_code(user_code)
        return DeviceAuthorization(
            device_code=device_code,
            user_code=shown,
            verification_uri=f"{public_url}/link",
            verification_uri_complete=f"{public_url}/link?user_code={shown}",
            expires_in=int(DEVICE_CODE_TTL.total_seconds()),
            interval=POLL_INTERVAL,
        )

    return db.run_write(work)


def purge_device_codes(session: Session, now: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` device codes expired for over PURGE_AFTER; returns how many."""
    stale = (
        select(DeviceCode.id)
        .where(DeviceCode.expires_at < now - PURGE_AFTER)
        .limit(batch)
        # Concurrent purges take disjoint rows instead of queueing on each other's locks.
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        delete(DeviceCode)
        .where(DeviceCode.id.in_(stale.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _make_room(session: Session, client_id: str, serial: str | None, now: datetime) -> None:
    """Bound live codes: per serial the oldest pending go; per client a full table refuses."""
    live = (DeviceCode.client_id == client_id, DeviceCode.expires_at > now)
    if serial is not None:
        pending = session.scalars(
            select(DeviceCode.id)
            .where(*live, DeviceCode.serial == serial, DeviceCode.status == "pending")
            .order_by(DeviceCode.id.desc())
            .offset(MAX_PENDING_PER_SERIAL - 1)
        ).all()
        if pending:
            session.execute(
                delete(DeviceCode)
                .where(DeviceCode.id.in_(pending))
                .execution_options(synchronize_session=False)
            )
    held = session.scalar(select(func.count()).select_from(DeviceCode).where(*live)) or 0
    if held >= MAX_PENDING_PER_CLIENT:
        raise DeviceFlowError("slow_down", "too many devices are linking; try again later")


def poll_device_token(
    db: Database, *, client_id: str, device_code: str, now: datetime | None = None
) -> IssuedToken:
    """The device's poll: its tokens once approved, else the RFC 8628 error word."""
    now = now or utcnow()
    if not isinstance(device_code, str) or not 1 <= len(device_code) <= 200:
        raise DeviceFlowError("invalid_request", "device_code missing or malformed")

    def work(session: Session) -> IssuedToken | DeviceFlowError:
        row = session.scalar(
            select(DeviceCode)
            .where(DeviceCode.device_code_hash == token_hash(device_code))
            .with_for_update()
        )
        if row is None or row.client_id != client_id or row.status == "redeemed":
            # A redeemed code never works again (Authlib would happily issue twice).
            return DeviceFlowError("invalid_grant", "unknown or already used device code")
        if now >= row.expires_at:
            return DeviceFlowError("expired_token", "the device code expired")
        if row.status == "denied":
            return DeviceFlowError("access_denied", "the shopper denied the request")
        too_soon = (
            row.last_polled_at is not None
            and (now - row.last_polled_at).total_seconds() < row.interval
        )
        row.last_polled_at = now
        if too_soon:
            row.interval += SLOW_DOWN_STEP
            return DeviceFlowError("slow_down", f"poll at most every {row.interval} s")
        if row.status == "pending":
            return DeviceFlowError("authorization_pending", "waiting for the shopper")
        return _redeem(session, row, now)

    result = db.run_write(work)
    if isinstance(result, DeviceFlowError):
        raise result
    return result


def _redeem(session: Session, row: DeviceCode, now: datetime) -> IssuedToken | DeviceFlowError:
    claimed = session.execute(
        update(DeviceCode)
        .where(DeviceCode.id == row.id, DeviceCode.status == "approved")
        .values(status="redeemed")
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return DeviceFlowError("invalid_grant", "already used device code")
    link = session.get(DeviceLink, row.link_id) if row.link_id else None
    if link is None or link.status != "active":
        return DeviceFlowError("access_denied", "the link was removed")
    security = session.scalar(
        select(DeviceModel.security).where(DeviceModel.client_id == row.client_id)
    )
    return issue_token(
        session,
        client_id=row.client_id,
        kind="device",
        scope=row.scope,
        shopper_id=link.shopper_id,
        store_id=link.store_id,
        device_id=link.device_id,
        link_id=link.id,
        oscore=security == "oscore",
        now=now,
    )


def refresh_device_token(
    db: Database, *, client_id: str, refresh_token: str, now: datetime | None = None
) -> IssuedToken:
    """The refresh grant for a device (CoAP `/link/token`): a new pair; the old pair dies."""
    if not isinstance(refresh_token, str) or not 1 <= len(refresh_token) <= 200:
        raise DeviceFlowError("invalid_request", "refresh_token missing or malformed")
    client = find_client(db, client_id)
    if client is None or client.kind != "device_model":
        raise DeviceFlowError("invalid_client", "unknown device client")
    try:
        return rotate_refresh_token(db, refresh_token, client, now=now)
    except GrantError as exc:
        raise DeviceFlowError(exc.error, exc.detail) from exc


def pending_device(db: Database, user_code: str, *, now: datetime | None = None) -> PendingDevice:
    """The device waiting behind a user code, for the /link page."""
    now = now or utcnow()
    code = normalize_user_code(user_code)
    if code is None:
        raise InvalidRequest("bad_user_code", "that is not a device code")
    with db.read() as session:
        row = session.scalar(select(DeviceCode).where(DeviceCode.user_code == code))
        if row is None or row.status != "pending" or now >= row.expires_at:
            raise InvalidRequest("bad_user_code", "no device is waiting for that code")
        _client, model = _device_client(session, row.client_id)
        store = session.get(Store, model.store_id)
        return PendingDevice(
            user_code=format_user_code(code),
            model_name=model.name,
            model_kind=model.kind,
            store_id=model.store_id,
            serial=row.serial,
            products=tuple(
                (p.sku, f"{p.name} ({p.currency} {p.price_minor // 100}.{p.price_minor % 100:02d})")
                for p in model.products
                if p.archived_at is None
            ),
            slots=_slot_choices(session, model),
            suggests_parts=any(c.product_id is not None for c in model.conditions),
            currency=store.currency if store is not None else "",
            unit=model.slots[0].unit if model.slots else None,
        )


def _slot_choices(session: Session, model: DeviceModel) -> tuple[SlotChoice, ...]:
    if len(model.slots) < 2:  # one slot follows the link's own rules
        return ()
    refills = {p.id: p.name for p in session.scalars(select(Product).where(
        Product.id.in_([s.product_id for s in model.slots if s.product_id is not None])
    ))}  # fmt: skip
    return tuple(
        SlotChoice(s.name, s.unit, s.capacity, refills.get(s.product_id or 0), s.policy)
        for s in model.slots
    )


def decide_device(
    db: Database,
    *,
    user_code: str,
    account_id: int,
    approve: bool,
    rules: LinkRules | None = None,
    now: datetime | None = None,
) -> int | None:
    """The shopper approves (link the device under `rules`) or denies; returns the link id.

    NotAllowed("device_taken") when the device has another shopper's active link: nothing
    changes then but a recorded attempt, which that link's owner sees.
    """
    now = now or utcnow()
    code = normalize_user_code(user_code)
    if code is None:
        raise InvalidRequest("bad_user_code", "that is not a device code")

    def work(session: Session) -> int | None | NotAllowed:
        row = session.scalar(
            select(DeviceCode).where(DeviceCode.user_code == code).with_for_update()
        )
        if row is None or row.status != "pending" or now >= row.expires_at:
            raise InvalidRequest("bad_user_code", "no device is waiting for that code")
        account = session.get(Account, account_id)
        if account is None or account.shopper_id is None:
            raise InvalidRequest("not_a_shopper", "only a shopper can link a device")
        if not approve:
            row.account_id = account.id
            row.status = "denied"
            return None
        _client, model = _device_client(session, row.client_id)
        shopper = session.get(Shopper, account.shopper_id)
        if shopper is None:  # pragma: no cover - FK guarantees it
            raise InvalidRequest("not_a_shopper", "no shopper")
        device = register_device(session, model, row.serial or f"auto-{secrets.token_hex(8)}")
        previous = active_link(session, device.id)
        if previous is not None and not may_link(previous, shopper.id):
            record_attempt(session, previous, account.id, row.client_id, device.serial, now)
            return NotAllowed("device_taken", TAKEN)
        if previous is not None:
            revoke_link_tokens(session, previous.id, now=now)
        link = link_device(session, device, shopper, rules or LinkRules(), now=now)
        row.account_id = account.id
        row.status = "approved"
        row.link_id = link.id
        return link.id

    # Two shoppers approving codes for one new serial race on the active-link index; the
    # re-run sees the winner's link.
    result = db.run_write(work, races=2)
    if isinstance(result, NotAllowed):
        raise result
    return result


def unlink_device(session: Session, link: DeviceLink, *, now: datetime | None = None) -> int:
    """End a device link and revoke its tokens in the same transaction; returns tokens revoked."""
    now = now or utcnow()
    unlink(session, link, now=now)
    return revoke_link_tokens(session, link.id, now=now)
