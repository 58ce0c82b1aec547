"""Accounts, OAuth clients, tokens and device codes. Secrets are stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from orders.store.db import utcnow
from orders.store.model import Base


class Account(Base):
    """A person who logs in: a shopper, merchant staff, or both."""

    __tablename__ = "accounts"
    __table_args__ = (
        # Every token check asks whether its shopper's account is disabled: index those few.
        Index(
            "ix_accounts_disabled_shopper",
            "shopper_id",
            sqlite_where=text("disabled = 1"),
            postgresql_where=text("disabled"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id"), default=None)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # IANA name the account reads times in; None: the store's.
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoreMembership(Base):
    """An account's role in a store (merchant staff)."""

    __tablename__ = "store_memberships"
    __table_args__ = (CheckConstraint("role IN ('owner', 'staff')", name="role"),)

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[int] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), default="staff")


class OAuthClient(Base):
    """A registered OAuth client: a device model (public), Alexa (confidential), an API client."""

    __tablename__ = "oauth_clients"
    __table_args__ = (
        CheckConstraint("kind IN ('device_model', 'alexa', 'web', 'merchant_api')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[int | None] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), default=None
    )
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(String(400), default="")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40), default="none")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """An access token (and maybe its refresh token), by SHA-256 hash; one rotation family."""

    __tablename__ = "oauth_tokens"
    __table_args__ = (Index("ix_oauth_tokens_link", "link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # shopper | device | merchant
    scope: Mapped[str] = mapped_column(String(400))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), default=None
    )
    shopper_id: Mapped[int | None] = mapped_column(ForeignKey("shoppers.id"), default=None)
    store_id: Mapped[int | None] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), default=None
    )
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), default=None
    )
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_links.id", ondelete="CASCADE"), default=None
    )
    family: Mapped[str] = mapped_column(String(32), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    refresh_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # OSCORE input material (RFC 9203 §3.2.1) of a proof-of-possession device token: such a
    # token is refused as a bearer token and only keys a security context (/authz-info).
    osc_ms: Mapped[bytes | None] = mapped_column(LargeBinary(32), default=None)
    osc_salt: Mapped[bytes | None] = mapped_column(LargeBinary(16), default=None)
    osc_id: Mapped[bytes | None] = mapped_column(LargeBinary(16), default=None)


class OscoreContext(Base):
    """A device's OSCORE security context (RFC 8613), derived at /authz-info from its token.

    One per token: a device that reboots posts its token again and replaces it. The hub's
    sender sequence numbers are reserved here in chunks; replays are struck in OscoreSeen.
    """

    __tablename__ = "oscore_contexts"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_tokens.id", ondelete="CASCADE"), unique=True
    )
    # The hub's Recipient ID: the kid of the device's requests, so the lookup key.
    recipient_id: Mapped[bytes] = mapped_column(LargeBinary(7), unique=True)
    sender_id: Mapped[bytes] = mapped_column(LargeBinary(7))
    master_salt: Mapped[bytes] = mapped_column(LargeBinary(64))
    id_context: Mapped[bytes | None] = mapped_column(LargeBinary(16), default=None)
    sender_seq_reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    replay_floor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OscoreSeen(Base):
    """A request sequence number a context has accepted: inserting it is the replay check."""

    __tablename__ = "oscore_seen"

    context_id: Mapped[int] = mapped_column(
        ForeignKey("oscore_contexts.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class DeviceCode(Base):
    """An RFC 8628 device authorization in progress."""

    __tablename__ = "oauth_device_codes"
    __table_args__ = (
        UniqueConstraint("user_code"),
        CheckConstraint("status IN ('pending', 'approved', 'denied', 'redeemed')", name="status"),
        # The purge walks expired rows; the cap counts one client's codes for one serial.
        Index("ix_oauth_device_codes_expires_at", "expires_at"),
        Index("ix_oauth_device_codes_client_serial", "client_id", "serial"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code: Mapped[str] = mapped_column(String(8))
    client_id: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str | None] = mapped_column(String(128), default=None)
    scope: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    interval: Mapped[int] = mapped_column(default=5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_polled_at: Mapped[datetime | None] = mapped_column(default=None)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), default=None
    )
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("device_links.id", ondelete="CASCADE"), default=None
    )


class LinkAttempt(Base):
    """A refused attempt by another account to link a device that has an active link."""

    __tablename__ = "device_link_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The owner's link the attempt ran into: the owner sees it while that link lasts.
    link_id: Mapped[int] = mapped_column(
        ForeignKey("device_links.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None
    )
    client_id: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(128))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceUnitSecret(Base):
    """A per-unit secret its maker provisioned (by SHA-256 hash): proof of possession."""

    __tablename__ = "device_unit_secrets"
    __table_args__ = (UniqueConstraint("model_id", "serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id", ondelete="CASCADE"))
    serial: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthorizationCode(Base):
    """A single-use authorization code (code + PKCE S256), by hash."""

    __tablename__ = "oauth_authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(400))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8), default="S256")
    nonce: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
