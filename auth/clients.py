"""OAuth clients a store manages: device models (public), Alexa linking, merchant API clients.

Client secrets are random 256-bit strings stored as SHA-256 hashes (`token_hash`) and shown
to the merchant exactly once, when created or rotated.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from auth.model import OAuthClient, Token
from auth.principal import DEVICE_SCOPES, MERCHANT_API_SCOPES, MERCHANT_SCOPES, SHOPPER_SCOPES
from auth.tokens import new_secret, token_hash
from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.maintenance import ConditionSpec
from orders.services.catalog import SlotSpec, create_device_model
from orders.store.db import Database, utcnow
from orders.store.model import Store

DEVICE_GRANTS = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
MAX_REDIRECT_URIS = 10


@dataclass(frozen=True)
class ClientView:
    """A client as the dashboard shows it (never the secret or its hash)."""

    client_id: str
    name: str
    kind: str
    redirect_uris: tuple[str, ...]
    scope: str
    has_secret: bool

    @classmethod
    def of(cls, client: OAuthClient) -> ClientView:
        """Snapshot a client row."""
        return cls(
            client.client_id,
            client.name,
            client.kind,
            tuple(client.redirect_uris or ()),
            client.scope,
            client.client_secret_hash is not None,
        )


@dataclass(frozen=True)
class NewSecret:
    """A client and its secret, which is shown once and never again."""

    client: ClientView
    client_secret: str


def create_device_model_client(
    db: Database,
    store_id: int,
    *,
    name: str,
    kind: str,
    skus: Sequence[str] = (),
    slot: SlotSpec | None = None,
    test_mode: bool = False,
    security: str = "oscore",
    slots: Sequence[SlotSpec] = (),
    conditions: Sequence[ConditionSpec] = (),
) -> tuple[int, str]:
    """A new device model and its public OAuth client; returns (model id, client id).

    `slots` are its consumables (a printer has four inks); `slot` is one of them, kept for
    callers that know only one.
    """
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("bad_name", "a name needs 1-200 characters")

    def work(session: Session) -> tuple[int, str]:
        store = _store(session, store_id)
        model = create_device_model(
            session, store, name=name.strip(), kind=kind, skus=list(skus),
            slots=[*([slot] if slot else []), *slots], conditions=conditions,
            security=security,
        )  # fmt: skip
        model.test_mode = test_mode
        session.add(
            OAuthClient(
                client_id=model.client_id,
                name=model.name,
                kind="device_model",
                store_id=store.id,
                grant_types=DEVICE_GRANTS,
                scope=DEVICE_SCOPES,
                token_endpoint_auth_method="none",
            )
        )
        session.flush()
        return model.id, model.client_id

    return db.run_write(work)


def alexa_client(db: Database, store_id: int) -> ClientView | None:
    """The store's Alexa account-linking client, if it has one."""
    with db.read() as session:
        client = session.scalar(_clients(store_id, "alexa").limit(1))
        return ClientView.of(client) if client else None


def create_alexa_client(db: Database, store_id: int, redirect_uris: Sequence[str]) -> NewSecret:
    """The store's Alexa account-linking client (confidential; one per store)."""
    uris = check_redirect_uris(redirect_uris)

    def work(session: Session) -> NewSecret:
        _store(session, store_id)
        if session.scalar(_clients(store_id, "alexa").limit(1)) is not None:
            raise InvalidRequest("exists", "this store already has an Alexa client")
        secret = new_secret()
        client = OAuthClient(
            client_id=f"alexa-{secrets.token_urlsafe(9)}",
            client_secret_hash=token_hash(secret),
            name="Alexa account linking",
            kind="alexa",
            store_id=store_id,
            redirect_uris=uris,
            grant_types=["authorization_code", "refresh_token"],
            scope=SHOPPER_SCOPES,
            token_endpoint_auth_method="client_secret_basic",
        )
        session.add(client)
        session.flush()
        return NewSecret(ClientView.of(client), secret)

    return db.run_write(work)


def create_merchant_api_client(
    db: Database, store_id: int, name: str, *, scopes: Sequence[str] = (MERCHANT_SCOPES,)
) -> NewSecret:
    """A confidential client for the store's own systems (client_credentials grant), with
    the merchant API scopes chosen for it."""
    if not name.strip() or len(name) > 200:
        raise InvalidRequest("bad_name", "a name needs 1-200 characters")
    chosen = [s for s in MERCHANT_API_SCOPES if s in " ".join(scopes).split()]
    if not chosen or set(" ".join(scopes).split()) - set(chosen):
        raise InvalidRequest("bad_scope", f"scopes are among {', '.join(MERCHANT_API_SCOPES)}")

    def work(session: Session) -> NewSecret:
        _store(session, store_id)
        secret = new_secret()
        client = OAuthClient(
            client_id=f"api-{secrets.token_urlsafe(9)}",
            client_secret_hash=token_hash(secret),
            name=name.strip(),
            kind="merchant_api",
            store_id=store_id,
            grant_types=["client_credentials"],
            scope=" ".join(chosen),
            token_endpoint_auth_method="client_secret_basic",
        )
        session.add(client)
        session.flush()
        return NewSecret(ClientView.of(client), secret)

    return db.run_write(work)


def list_api_clients(db: Database, store_id: int) -> list[ClientView]:
    """The store's merchant API clients (a store has a handful, so no paging)."""
    with db.read() as session:
        query = _clients(store_id, "merchant_api").order_by(OAuthClient.id).limit(100)
        return [ClientView.of(c) for c in session.scalars(query)]


def rotate_secret(
    db: Database, store_id: int, client_id: str, *, now: datetime | None = None
) -> NewSecret:
    """A new secret for one of the store's confidential clients; the old secret and every
    token issued to the client stop working (a leaked secret may have minted them)."""

    def work(session: Session) -> NewSecret:
        client = _confidential(session, store_id, client_id)
        secret = new_secret()
        client.client_secret_hash = token_hash(secret)
        session.execute(
            update(Token)
            .where(Token.client_id == client.client_id, Token.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        session.flush()
        return NewSecret(ClientView.of(client), secret)

    return db.run_write(work)


def set_redirect_uris(
    db: Database, store_id: int, client_id: str, redirect_uris: Sequence[str]
) -> ClientView:
    """Replace the redirect URIs of the store's Alexa client."""
    uris = check_redirect_uris(redirect_uris)

    def work(session: Session) -> ClientView:
        client = _confidential(session, store_id, client_id)
        if client.kind != "alexa":
            raise InvalidRequest("no_redirects", "only the Alexa client has redirect URIs")
        client.redirect_uris = uris
        session.flush()
        return ClientView.of(client)

    return db.run_write(work)


def check_redirect_uris(uris: Sequence[str]) -> list[str]:
    """Absolute https URIs without fragments (http only for localhost), de-duplicated."""
    cleaned: list[str] = []
    for uri in (u.strip() for u in uris):
        if not uri:
            continue
        parts = urlsplit(uri)
        local = parts.hostname in ("localhost", "127.0.0.1")
        if len(uri) > 2000 or parts.fragment or not parts.netloc:
            raise InvalidRequest("bad_redirect_uri", f"{uri[:80]!r} is not an absolute URI")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise InvalidRequest("bad_redirect_uri", f"{uri[:80]!r} must use https")
        if uri not in cleaned:
            cleaned.append(uri)
    if not cleaned or len(cleaned) > MAX_REDIRECT_URIS:
        raise InvalidRequest("bad_redirect_uri", f"give 1 to {MAX_REDIRECT_URIS} redirect URIs")
    return cleaned


def _clients(store_id: int, kind: str) -> Select[OAuthClient]:
    return select(OAuthClient).where(OAuthClient.store_id == store_id, OAuthClient.kind == kind)


def _confidential(session: Session, store_id: int, client_id: str) -> OAuthClient:
    client = session.scalar(
        select(OAuthClient)
        .where(
            OAuthClient.client_id == client_id,
            OAuthClient.store_id == store_id,
            OAuthClient.kind.in_(("alexa", "merchant_api")),
        )
        .with_for_update()
    )
    if client is None:
        raise NotFound("not_found", "no such client")
    return client


def _store(session: Session, store_id: int) -> Store:
    store = session.get(Store, store_id)
    if store is None:
        raise NotFound("not_found", "no such store")
    return store
