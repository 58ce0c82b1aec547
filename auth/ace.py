"""ACE-OSCORE (RFC 9203): OSCORE input material in device tokens, security contexts at
/authz-info. Framework-free: the hub calls these from its thread pool."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import cbor2
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auth.model import OscoreContext, Token
from auth.osc_input import OscoreInput as OscoreInput
from auth.principal import InvalidToken, OAuthError
from auth.tokens import token_hash, verify_token_digest
from orders.store.db import Database, utcnow

NONCE_BYTES = 8
# AES-CCM-16-64-128 nonces leave 7 bytes for a Sender or Recipient ID (RFC 8613 §5.2).
MAX_RECIPIENT_ID = 7
HUB_ID_BYTES = 5
# RFC 9203 §10.4 and RFC 9200 CBOR abbreviations of the /authz-info parameters.
ACCESS_TOKEN = 1
NONCE1 = 40
NONCE2 = 42
ACE_CLIENT_RECIPIENTID = 43
ACE_SERVER_RECIPIENTID = 44
NAMES = {
    ACCESS_TOKEN: "access_token",
    NONCE1: "nonce1",
    NONCE2: "nonce2",
    ACE_CLIENT_RECIPIENTID: "ace_client_recipientid",
    ACE_SERVER_RECIPIENTID: "ace_server_recipientid",
}


def master_salt(salt: bytes, nonce1: bytes, nonce2: bytes) -> bytes:
    """RFC 9203 §4.3: salt | N1 | N2, each as its CBOR byte string."""
    return cbor2.dumps(salt) + cbor2.dumps(nonce1) + cbor2.dumps(nonce2)


@dataclass(frozen=True)
class Established:
    """The answer to /authz-info, and the context row it made."""

    nonce2: bytes
    server_recipient_id: bytes
    context_id: int


class AuthzInfoError(OAuthError):
    """A malformed /authz-info post (`invalid_request`); a bad token is InvalidToken."""


def establish_context(
    db: Database,
    *,
    access_token: object,
    nonce1: object,
    client_recipient_id: object,
    now: datetime | None = None,
) -> Established:
    """RFC 9203 §4.1: check a device's proof-of-possession token and make its OSCORE context.

    The hub picks N2 and its own Recipient ID; a token already used replaces its context
    (the device rebooted and lost its sequence numbers), so no device stores them.
    """
    if not isinstance(nonce1, bytes) or not 8 <= len(nonce1) <= 32:
        raise AuthzInfoError("invalid_request", "nonce1 must be 8-32 bytes")
    if not isinstance(client_recipient_id, bytes) or len(client_recipient_id) > MAX_RECIPIENT_ID:
        raise AuthzInfoError("invalid_request", "ace_client_recipientid must be 0-7 bytes")
    if not isinstance(access_token, str):
        raise InvalidToken("invalid_token", "access_token must be the device's token")
    now = now or utcnow()
    digest = token_hash(access_token)

    def work(session: Session) -> Established:
        # Revoked, expired, unlinked or a disabled account: InvalidToken, as for a bearer.
        principal = verify_token_digest(session.connection(), digest, None, now=now)
        token = session.get(Token, principal.token_id)
        if token is None or token.kind != "device" or token.osc_salt is None:
            raise InvalidToken("invalid_token", "not a proof-of-possession device token")
        nonce2 = secrets.token_bytes(NONCE_BYTES)
        recipient_id = _hub_id(client_recipient_id)
        session.execute(delete(OscoreContext).where(OscoreContext.token_id == token.id))
        context = OscoreContext(
            token_id=token.id,
            recipient_id=recipient_id,
            sender_id=client_recipient_id,
            master_salt=master_salt(token.osc_salt, nonce1, nonce2),
            sender_seq_reserved=0,
            replay_floor=0,
            created_at=now,
        )
        session.add(context)
        session.flush()
        return Established(nonce2, recipient_id, context.id)

    try:
        # Two reboots racing on one token, or a Recipient ID drawn twice: draw again.
        return db.run_write(work, races=3)
    except IntegrityError as exc:  # pragma: no cover - four collisions in a row
        raise AuthzInfoError("invalid_request", "try again") from exc


def _hub_id(client_id: bytes) -> bytes:
    while True:
        candidate = secrets.token_bytes(HUB_ID_BYTES)
        if candidate != client_id:
            return candidate
