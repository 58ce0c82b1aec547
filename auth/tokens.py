"""Issue, check, rotate and revoke tokens. Framework-free: callable from any thread."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, exists, select, update
from sqlalchemy.orm import Session

from auth.model import Account, Token
from auth.osc_input import OscoreInput
from auth.principal import InvalidToken, Principal
from orders.domain import ops
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink
from orders.store.sql import in_list

ACCESS_TTL = {"shopper": timedelta(hours=1), "merchant": timedelta(hours=1)}
# A device's access token travels in clear inside CoAP payloads (until per-device OSCORE):
# it lives a day, so a sniffed one expires; the device renews it with its refresh token.
DEVICE_ACCESS_TTL = timedelta(hours=24)
REFRESH_TTL = timedelta(days=60)
# A button pressed twice a year must still be able to refresh; the family dies with the
# link anyway, and each rotation starts a fresh year.
DEVICE_REFRESH_TTL = timedelta(days=365)


@dataclass(frozen=True)
class Digest:
    """A token known only by its hash: an OSCORE context names its token this way."""

    hex: str


def token_hash(token: str) -> str:
    """SHA-256 of a token: tokens carry 256 random bits, so no salt or slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_secret() -> str:
    """A fresh random token string (256 bits)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedToken:
    """A token response (RFC 6749 §5.1), plus the device id for device tokens."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    device_id: int | None = None
    token_type: str = "Bearer"
    # OSCORE input material of a proof-of-possession token (RFC 9203 §3.2).
    osc: OscoreInput | None = None

    def as_response(self, *, binary: bool = False) -> dict[str, object]:
        """The body of a token response (JSON; `binary`: CBOR, byte strings as they are)."""
        body: dict[str, object] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.device_id is not None:
            body["device_id"] = self.device_id
        if self.osc is not None:
            body["cnf"] = self.osc.as_cnf(binary=binary)
        return body


def issue_token(
    session: Session,
    *,
    client_id: str,
    kind: str,
    scope: str,
    account_id: int | None = None,
    shopper_id: int | None = None,
    store_id: int | None = None,
    device_id: int | None = None,
    link_id: int | None = None,
    family: str | None = None,
    with_refresh: bool = True,
    oscore: bool = False,
    now: datetime | None = None,
) -> IssuedToken:
    """Store a new token (hashed) and return the only copy of its secrets.

    `oscore`: a proof-of-possession device token carrying OSCORE input material (RFC 9203).
    """
    now = now or utcnow()
    osc = OscoreInput.fresh() if oscore else None
    ttl = DEVICE_ACCESS_TTL if kind == "device" else ACCESS_TTL[kind]
    access = new_secret()
    refresh = new_secret() if with_refresh else None
    session.add(
        Token(
            access_token_hash=token_hash(access),
            refresh_token_hash=token_hash(refresh) if refresh else None,
            client_id=client_id,
            kind=kind,
            scope=scope,
            account_id=account_id,
            shopper_id=shopper_id,
            store_id=store_id,
            device_id=device_id,
            link_id=link_id,
            family=family or secrets.token_hex(16),
            issued_at=now,
            expires_at=now + ttl,
            refresh_expires_at=now + refresh_ttl(kind) if refresh else None,
            osc_ms=osc.ms if osc else None,
            osc_salt=osc.salt if osc else None,
            osc_id=osc.id if osc else None,
        )
    )
    session.flush()
    return IssuedToken(
        access_token=access,
        expires_in=int(ttl.total_seconds()),
        scope=scope,
        refresh_token=refresh,
        device_id=device_id,
        osc=osc,
    )


def refresh_ttl(kind: str) -> timedelta:
    """How long a refresh token of this kind of token lives."""
    return DEVICE_REFRESH_TTL if kind == "device" else REFRESH_TTL


# One Core query on a bare connection: this runs for every device request and every
# API call, so it skips the ORM's overhead but still reads the live rows.
_COLUMNS = (
    Token.id,
    Token.client_id,
    Token.kind,
    Token.scope,
    Token.revoked_at,
    Token.expires_at,
    Token.account_id,
    Token.shopper_id,
    Token.store_id,
    Token.device_id,
    Token.link_id,
    DeviceLink.status,
    # A proof-of-possession token keys an OSCORE context and is refused as a bearer token.
    Token.osc_ms.is_not(None).label("pop"),
    # A disabled account's shopper and device tokens stop at once (a partial index probe).
    exists().where(Account.shopper_id == Token.shopper_id, Account.disabled).label("disabled"),
)
_VERIFY = (
    select(*_COLUMNS)
    .outerjoin(DeviceLink, DeviceLink.id == Token.link_id)
    .where(Token.access_token_hash == bindparam("digest"))
)
_VERIFY_MANY = (
    select(Token.access_token_hash, *_COLUMNS)
    .outerjoin(DeviceLink, DeviceLink.id == Token.link_id)
    .where(in_list(Token.access_token_hash, "digests"))
)


def verify_access_token(
    db: Database, token: str, required_scope: str | None = None, *, now: datetime | None = None
) -> Principal:
    """The principal behind a bearer token, or InvalidToken. No cache: revocation is immediate."""
    try:
        _check_shape(token)
        now = now or utcnow()
        digest = token_hash(token)
        row = db.lookup(lambda conn: conn.execute(_VERIFY, {"digest": digest}).first())
        principal = _principal(row, required_scope, now)
    except InvalidToken as refused:
        ops.count(ops.TOKEN_CHECKS, refused.error)
        raise
    ops.count(ops.TOKEN_CHECKS, "valid")
    return principal


# The device ids behind a batch's tokens, for statements sent with the token read.
_DEVICES_OF = select(Token.device_id).where(in_list(Token.access_token_hash, "digests"))


class TokenCheck:
    """`verify_access_token` for many tokens at once, split around one query.

    `query` (with `params`) reads the tokens, for the caller to send with its own
    statements; `device_ids` (same `params`) is a one-column SELECT of the device ids
    those tokens may belong to, for statements of the same round trip; `verdicts` judges
    the rows `query` returned. For group-committed work (the hub's presses): the tokens
    are read in the same transaction as the work they authorise, so a revocation is seen
    as promptly as with one query per token.
    """

    query: Select[*tuple[Any, ...]] = _VERIFY_MANY
    device_ids: Select[*tuple[Any, ...]] = _DEVICES_OF

    def __init__(self, tokens: Sequence[str | Digest]) -> None:
        self.digests: list[str | None] = []
        for token in tokens:
            if isinstance(token, Digest):
                self.digests.append(token.hex)
                continue
            try:
                _check_shape(token)
            except InvalidToken:
                self.digests.append(None)
                continue
            self.digests.append(token_hash(token))
        wanted = sorted({digest for digest in self.digests if digest is not None})
        self.params: dict[str, Any] = {"digests": wanted}

    def verdicts(
        self, found: Sequence[Any], required_scope: str | None, now: datetime
    ) -> list[Principal | InvalidToken]:
        """Each token's principal or why not, in the order the tokens were given."""
        rows = {row[0]: row for row in found}
        answers: list[Principal | InvalidToken] = []
        for digest in self.digests:
            try:
                if digest is None:
                    raise InvalidToken("invalid_token", "malformed token")
                answers.append(_principal(rows.get(digest), required_scope, now))
            except InvalidToken as refused:
                answers.append(refused)
        results = Counter(
            answer.error if isinstance(answer, InvalidToken) else "valid" for answer in answers
        )
        for result, amount in results.items():
            ops.count(ops.TOKEN_CHECKS, result, amount=amount)
        return answers


def verify_access_tokens(
    conn: Connection, tokens: Sequence[str], required_scope: str | None, *, now: datetime
) -> list[Principal | InvalidToken]:
    """`verify_access_token` for many tokens in one query, on the caller's connection.

    Answers keep the order of `tokens`.
    """
    check = TokenCheck(tokens)
    found = conn.execute(check.query, check.params).all()
    return check.verdicts(found, required_scope, now)


def _check_shape(token: object) -> None:
    if not isinstance(token, str) or not 20 <= len(token) <= 200:
        raise InvalidToken("invalid_token", "malformed token")


def _principal(row: Any, required_scope: str | None, now: datetime) -> Principal:
    """The principal of one `_VERIFY` row (None: no such token), or InvalidToken."""
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise InvalidToken("invalid_token", "unknown, expired or revoked token")
    if row.link_id is not None and row.status != "active":
        raise InvalidToken("invalid_token", "the device is no longer linked")
    if row.disabled:
        raise InvalidToken("invalid_token", "the account is disabled")
    scopes = frozenset(row.scope.split())
    if required_scope is not None and required_scope not in scopes:
        raise InvalidToken("insufficient_scope", f"needs {required_scope}")
    if row.kind not in ("shopper", "device", "merchant"):  # pragma: no cover - we write it
        raise InvalidToken("invalid_token", "unknown token kind")
    return Principal(
        kind=row.kind,
        client_id=row.client_id,
        scopes=scopes,
        shopper_id=row.shopper_id,
        store_id=row.store_id,
        device_id=row.device_id,
        link_id=row.link_id,
        account_id=row.account_id,
        token_id=row.id,
        oscore=bool(row.pop),
    )


def verify_token_digest(
    conn: Connection, digest: str, required_scope: str | None, *, now: datetime
) -> Principal:
    """As verify_access_token, for a token known by its hash (an OSCORE context's token)."""
    return _principal(conn.execute(_VERIFY, {"digest": digest}).first(), required_scope, now)


def revoke_link_tokens(session: Session, link_id: int, *, now: datetime | None = None) -> int:
    """Revoke every token bound to a device link; returns how many were live."""
    result = session.execute(
        update(Token)
        .where(Token.link_id == link_id, Token.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_family(session: Session, family: str, *, now: datetime | None = None) -> None:
    """Revoke a whole refresh-rotation family (on reuse of a rotated refresh token)."""
    session.execute(
        update(Token)
        .where(Token.family == family, Token.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
