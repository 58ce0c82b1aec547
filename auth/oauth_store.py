"""What the OAuth endpoints read and write, as framework-free units of work over our tables.

Authlib parses requests, authenticates clients and words the errors; every decision that
must be atomic (a code or refresh token used once, a family revoked on reuse) is one
transaction here, because Authlib's grants generate, save and delete in separate steps.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from auth.model import Account, AuthorizationCode, OAuthClient, Token
from auth.passwords import check_password
from auth.principal import MERCHANT_SCOPES, SHOPPER_SCOPES, OAuthError
from auth.tokens import IssuedToken, issue_token, revoke_family, token_hash
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink

CODE_TTL = timedelta(minutes=5)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# What each kind of client may ever do; a client's own `grant_types` can only narrow it.
KIND_GRANTS: dict[str, frozenset[str]] = {
    "device_model": frozenset({DEVICE_GRANT, "refresh_token"}),
    "alexa": frozenset({"authorization_code", "refresh_token"}),
    "web": frozenset({"authorization_code", "refresh_token"}),
    "merchant_api": frozenset({"client_credentials"}),
}
DEFAULT_SCOPES = {"alexa": SHOPPER_SCOPES, "web": SHOPPER_SCOPES, "merchant_api": MERCHANT_SCOPES}


class GrantError(OAuthError):
    """A refusal with its RFC 6749 error word (`invalid_grant`, `invalid_scope`, …)."""


@dataclass(frozen=True)
class ClientRecord:
    """A registered client as the endpoints need it (a detached copy of the row)."""

    client_id: str
    name: str
    kind: str
    store_id: int | None
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scope: str

    @property
    def confidential(self) -> bool:
        """True when the client has a secret and must authenticate with it."""
        return self.secret_hash is not None

    def allows_grant(self, grant_type: str) -> bool:
        """The kind's grants, narrowed by the client's own list when it has one."""
        if self.store_id is None:
            # Every token is bound to its client's store: a client without one issues none.
            return False
        allowed = KIND_GRANTS.get(self.kind, frozenset())
        return grant_type in allowed and (not self.grant_types or grant_type in self.grant_types)

    def scopes(self) -> frozenset[str]:
        """Every scope this client may be granted."""
        return frozenset((self.scope or DEFAULT_SCOPES.get(self.kind, "")).split())

    def check_secret(self, secret: str) -> bool:
        """Constant-time check of a presented secret (SHA-256 or argon2 hash stored)."""
        if self.secret_hash is None or not secret:
            return False
        if self.secret_hash.startswith("$argon2"):
            return check_password(self.secret_hash, secret)
        return hmac.compare_digest(token_hash(secret), self.secret_hash)


@dataclass(frozen=True)
class CodeRecord:
    """An unused, unexpired authorization code."""

    id: int
    client_id: str
    redirect_uri: str
    scope: str
    account_id: int
    code_challenge: str
    code_challenge_method: str
    family: str


@dataclass(frozen=True)
class TokenRecord:
    """A stored token and whether it is usable now (for introspection and revocation)."""

    id: int
    client_id: str
    kind: str
    scope: str
    family: str
    active: bool
    matched_refresh: bool
    issued_at: datetime
    expires_at: datetime
    shopper_id: int | None
    store_id: int | None
    device_id: int | None


def _account_disabled(session: Session, shopper_id: int | None) -> bool:
    """True when the shopper behind a token has a disabled account (their tokens all stop)."""
    if shopper_id is None:
        return False
    disabled = exists().where(Account.shopper_id == shopper_id, Account.disabled)
    return bool(session.scalar(select(disabled)))


def find_client(db: Database, client_id: str) -> ClientRecord | None:
    """The client registered as `client_id`, if any."""
    if not client_id or len(client_id) > 64:
        return None
    with db.read() as session:
        row = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
        if row is None:
            return None
        return ClientRecord(
            client_id=row.client_id,
            name=row.name,
            kind=row.kind,
            store_id=row.store_id,
            secret_hash=row.client_secret_hash,
            redirect_uris=tuple(row.redirect_uris or ()),
            grant_types=frozenset(row.grant_types or ()),
            scope=row.scope,
        )


def granted_scope(client: ClientRecord, requested: str | None) -> str:
    """The scope to grant: all the client may have by default, else exactly what it asked."""
    allowed = client.scopes()
    wanted = (requested or "").split() or sorted(allowed)
    if not set(wanted) <= allowed:
        raise GrantError("invalid_scope", "scope beyond what this client may ask")
    return " ".join(dict.fromkeys(wanted))


def save_authorization_code(
    db: Database,
    *,
    code: str,
    client_id: str,
    redirect_uri: str,
    scope: str,
    account_id: int,
    code_challenge: str,
    now: datetime | None = None,
) -> None:
    """Store a new code (by hash) for the token endpoint to redeem once."""
    now = now or utcnow()
    with db.write() as session:
        session.add(
            AuthorizationCode(
                code_hash=token_hash(code),
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                account_id=account_id,
                code_challenge=code_challenge,
                code_challenge_method="S256",
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )


def _code_family(code_hash: str) -> str:
    # Tokens from a code share a family named after it, so a replayed code can revoke them.
    return code_hash[:32]


def find_authorization_code(
    db: Database, code: str, client_id: str, *, now: datetime | None = None
) -> CodeRecord | None:
    """The usable code for this client; a replayed code revokes what it issued (RFC 6749 4.1.2)."""
    now = now or utcnow()
    if not code or len(code) > 200:
        return None
    digest = token_hash(code)

    def work(session: Session) -> CodeRecord | None:
        row = session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == digest))
        if row is None or row.client_id != client_id:
            return None
        if row.used_at is not None:
            revoke_family(session, _code_family(digest), now=now)
            return None
        if row.expires_at <= now:
            return None
        return CodeRecord(
            id=row.id,
            client_id=row.client_id,
            redirect_uri=row.redirect_uri,
            scope=row.scope,
            account_id=row.account_id,
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            family=_code_family(digest),
        )

    return db.run_write(work)


def redeem_authorization_code(
    db: Database, code: CodeRecord, client: ClientRecord, *, now: datetime | None = None
) -> IssuedToken:
    """Mark the code used and issue the shopper's token, in one transaction (single use)."""
    now = now or utcnow()

    def work(session: Session) -> IssuedToken:
        claimed = session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == code.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise GrantError("invalid_grant", "the code was already used")
        account = session.get(Account, code.account_id)
        if account is None or account.disabled or account.shopper_id is None:
            raise GrantError("invalid_grant", "the account behind this code can't be linked")
        if client.store_id is None:  # pragma: no cover - allows_grant refuses such clients
            raise GrantError("unauthorized_client", "this client belongs to no store")
        return issue_token(
            session,
            client_id=client.client_id,
            kind="shopper",
            scope=code.scope,
            account_id=account.id,
            shopper_id=account.shopper_id,
            store_id=client.store_id,
            family=code.family,
            with_refresh=client.allows_grant("refresh_token"),
            now=now,
        )

    return db.run_write(work)


def rotate_refresh_token(
    db: Database,
    refresh_token: str,
    client: ClientRecord,
    scope: str | None = None,
    *,
    now: datetime | None = None,
) -> IssuedToken:
    """A new token pair for a refresh token, which then stops working; reuse revokes the family."""
    now = now or utcnow()
    digest = token_hash(refresh_token) if 1 <= len(refresh_token) <= 200 else ""

    def work(session: Session) -> IssuedToken | GrantError:
        row = session.scalar(
            select(Token).where(Token.refresh_token_hash == digest).with_for_update()
        )
        if row is None or row.client_id != client.client_id:
            return GrantError("invalid_grant", "unknown refresh token")
        if row.refresh_used_at is not None:
            # A rotated token came back: someone holds a copy. End the whole family.
            revoke_family(session, row.family, now=now)
            return GrantError("invalid_grant", "refresh token reused; the grant is revoked")
        if row.revoked_at is not None or (row.refresh_expires_at or now) <= now:
            return GrantError("invalid_grant", "refresh token expired or revoked")
        if _account_disabled(session, row.shopper_id):
            return GrantError("invalid_grant", "the account is disabled")
        if row.link_id is not None:
            link = session.get(DeviceLink, row.link_id)
            if link is None or link.status != "active":
                return GrantError("invalid_grant", "the device is no longer linked")
        wanted = scope.split() if scope else row.scope.split()
        if not set(wanted) <= set(row.scope.split()):
            return GrantError("invalid_scope", "scope beyond the original grant")
        # A device's rotation also ends the access token it replaces: a sniffed copy of
        # that token dies when the device refreshes, not when it expires.
        ended = {"revoked_at": now} if row.kind == "device" else {}
        claimed = session.execute(
            update(Token)
            .where(Token.id == row.id, Token.refresh_used_at.is_(None))
            .values(refresh_used_at=now, **ended)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]  # pragma: no cover - row lock
            return GrantError("invalid_grant", "refresh token already used")
        return issue_token(
            session,
            client_id=row.client_id,
            kind=row.kind,
            scope=" ".join(wanted),
            account_id=row.account_id,
            shopper_id=row.shopper_id,
            store_id=row.store_id,
            device_id=row.device_id,
            link_id=row.link_id,
            family=row.family,
            oscore=row.osc_ms is not None,
            now=now,
        )

    result = db.run_write(work)
    if isinstance(result, GrantError):
        raise result
    return result


def issue_client_token(
    db: Database, client: ClientRecord, scope: str, *, now: datetime | None = None
) -> IssuedToken:
    """A merchant token for a merchant API client (client credentials; no refresh token)."""
    if client.kind != "merchant_api" or client.store_id is None:
        raise GrantError("unauthorized_client", "only merchant API clients use this grant")
    with db.write() as session:
        return issue_token(
            session,
            client_id=client.client_id,
            kind="merchant",
            scope=scope,
            store_id=client.store_id,
            with_refresh=False,
            now=now,
        )


def find_token(
    db: Database, token: str, hint: str | None = None, *, now: datetime | None = None
) -> TokenRecord | None:
    """The stored token an access or refresh token string names, with its state now."""
    now = now or utcnow()
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    if hint == "access_token":
        match = Token.access_token_hash == digest
    elif hint == "refresh_token":
        match = Token.refresh_token_hash == digest
    else:
        match = or_(Token.access_token_hash == digest, Token.refresh_token_hash == digest)
    with db.read() as session:
        row = session.scalar(select(Token).where(match))
        if row is None:
            return None
        is_refresh = row.refresh_token_hash == digest
        if is_refresh:
            live = row.refresh_used_at is None and (row.refresh_expires_at or now) > now
        else:
            live = row.expires_at > now
        if row.link_id is not None:
            link = session.get(DeviceLink, row.link_id)
            live = live and link is not None and link.status == "active"
        live = live and not _account_disabled(session, row.shopper_id)
        return TokenRecord(
            id=row.id,
            client_id=row.client_id,
            kind=row.kind,
            scope=row.scope,
            family=row.family,
            active=live and row.revoked_at is None,
            matched_refresh=is_refresh,
            issued_at=row.issued_at,
            expires_at=(row.refresh_expires_at or row.expires_at) if is_refresh else row.expires_at,
            shopper_id=row.shopper_id,
            store_id=row.store_id,
            device_id=row.device_id,
        )


def revoke(db: Database, record: TokenRecord, *, now: datetime | None = None) -> None:
    """RFC 7009: an access token ends its own row; a refresh token ends its whole family."""
    now = now or utcnow()
    with db.write() as session:
        if record.matched_refresh:
            revoke_family(session, record.family, now=now)
        else:
            session.execute(
                update(Token)
                .where(Token.id == record.id, Token.revoked_at.is_(None))
                .values(revoked_at=now)
                .execution_options(synchronize_session=False)
            )
