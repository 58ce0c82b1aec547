"""Create requests sent with an idempotency key: the first is done, repeats get its answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders.domain.errors import DomainError, InvalidRequest
from orders.store.db import Database, utcnow
from orders.store.model import IdempotentRequest

MAX_KEY = 255
# A claim not answered within this long was abandoned (its process died); it may be retaken.
ABANDONED_AFTER = timedelta(minutes=1)
# Answers are kept this long; a key older than that is new again.
KEPT_FOR = timedelta(hours=24)


class KeyReused(DomainError):
    """The key was used before with a different request."""

    reason = "idempotency_key_reused"


class KeyInFlight(DomainError):
    """The first request with this key is still being answered."""

    reason = "idempotency_key_in_flight"


@dataclass(frozen=True)
class Stored:
    """The answer the first request with a key got."""

    status: int
    body: str
    location: str | None


def check_key(key: str) -> str:
    """A key of 1-255 printable ASCII characters, or InvalidRequest."""
    if not 1 <= len(key) <= MAX_KEY or not all(" " < ch <= "~" for ch in key):
        raise InvalidRequest("bad_idempotency_key", "Idempotency-Key: 1-255 visible ASCII")
    return key


def claim(
    db: Database, client_id: str, key: str, fingerprint: str, *, now: datetime | None = None
) -> Stored | None:
    """Claim `key` for this request (None: go ahead) or return the answer it already got."""
    check_key(key)
    moment = now or utcnow()

    def work(session: Session) -> Stored | None:
        row = session.scalar(
            select(IdempotentRequest)
            .where(IdempotentRequest.client_id == client_id, IdempotentRequest.key == key)
            .with_for_update()
        )
        if row is not None and row.created_at <= moment - KEPT_FOR:
            session.delete(row)
            session.flush()
            row = None
        if row is None:
            session.add(
                IdempotentRequest(
                    client_id=client_id, key=key, fingerprint=fingerprint, created_at=moment
                )
            )
            session.flush()
            return None
        if row.fingerprint != fingerprint:
            raise KeyReused(detail="this Idempotency-Key was used with a different request")
        if row.status is None or row.body is None:
            if row.created_at > moment - ABANDONED_AFTER:
                raise KeyInFlight(detail="a request with this Idempotency-Key is in progress")
            row.created_at = moment
            return None
        return Stored(row.status, row.body, row.location)

    # A racing first request inserts the same key: run again and see the winner's row.
    try:
        return db.run_write(work, races=1)
    except IntegrityError as exc:  # pragma: no cover - a third racer; the client retries
        raise KeyInFlight(detail="a request with this Idempotency-Key is in progress") from exc


def answer(db: Database, client_id: str, key: str, stored: Stored) -> None:
    """Keep the answer of the request that claimed `key`, for its repeats."""

    def work(session: Session) -> None:
        session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.client_id == client_id, IdempotentRequest.key == key)
            .values(status=stored.status, body=stored.body, location=stored.location)
        )

    db.run_write(work)


def release(db: Database, client_id: str, key: str) -> None:
    """Forget a claim whose request failed, so a corrected retry may use the key."""

    def work(session: Session) -> None:
        session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.client_id == client_id,
                IdempotentRequest.key == key,
                IdempotentRequest.status.is_(None),
            )
        )

    db.run_write(work)
