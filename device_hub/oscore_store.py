"""The database side of the hub's OSCORE contexts: load by kid, strike out, reserve.

A request's sequence number is struck out with one INSERT that fails on a replay, whichever
hub process runs it; requests arriving together share one transaction (StrikeBatcher).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from auth.model import OscoreContext, OscoreSeen, Token
from device_hub.compat_aiocoap import ContextUnavailable
from orders.store.db import Database, utcnow

log = logging.getLogger("restock.hub.oscore")

# Requests up to this far behind the newest one are still accepted once (RFC 8613 §7.4).
REPLAY_WINDOW = 32


@dataclass(frozen=True)
class ContextRecord:
    """A stored context's parameters, as /authz-info derived them."""

    id: int
    token_digest: str
    master_secret: bytes
    master_salt: bytes
    sender_id: bytes
    recipient_id: bytes
    id_context: bytes | None


_STRIKE = text(
    "INSERT INTO oscore_seen (context_id, seq) "
    "SELECT c.id, :seq FROM oscore_contexts c "
    "JOIN oauth_tokens t ON t.id = c.token_id "
    "LEFT JOIN device_links l ON l.id = t.link_id "
    "WHERE c.id = :context_id AND c.recipient_id = :kid AND :seq >= c.replay_floor "
    "AND t.revoked_at IS NULL AND t.expires_at > :now "
    "AND (t.link_id IS NULL OR l.status = 'active') "
    "ON CONFLICT (context_id, seq) DO NOTHING"
)


# PostgreSQL: a whole batch in one statement; the rows it returns are the fresh ones.
_STRIKE_MANY_PG = text(
    "INSERT INTO oscore_seen (context_id, seq) "
    "SELECT c.id, v.seq FROM unnest(CAST(:cids AS integer[]), CAST(:kids AS bytea[]), "
    "CAST(:seqs AS bigint[])) AS v(cid, kid, seq) "
    "JOIN oscore_contexts c ON c.id = v.cid AND c.recipient_id = v.kid "
    "JOIN oauth_tokens t ON t.id = c.token_id "
    "LEFT JOIN device_links l ON l.id = t.link_id "
    "WHERE v.seq >= c.replay_floor AND t.revoked_at IS NULL AND t.expires_at > :now "
    "AND (t.link_id IS NULL OR l.status = 'active') "
    "ON CONFLICT (context_id, seq) DO NOTHING RETURNING context_id, seq"
)


class ContextStore:
    """The database side of the hub's contexts: load by kid, strike, reserve, forget."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, kid: bytes) -> ContextRecord | None:
        """The context whose Recipient ID is `kid`, or None."""

        def work(conn: Connection) -> Any:
            query = (
                select(
                    OscoreContext.id,
                    Token.access_token_hash,
                    Token.osc_ms,
                    OscoreContext.master_salt,
                    OscoreContext.sender_id,
                    OscoreContext.recipient_id,
                    OscoreContext.id_context,
                )
                .join(Token, Token.id == OscoreContext.token_id)
                .where(OscoreContext.recipient_id == kid)
            )
            return conn.execute(query).first()

        row = self.db.lookup(work)
        if row is None or row.osc_ms is None:
            return None
        return ContextRecord(
            id=row.id,
            token_digest=row.access_token_hash,
            master_secret=bytes(row.osc_ms),
            master_salt=bytes(row.master_salt),
            sender_id=bytes(row.sender_id),
            recipient_id=bytes(row.recipient_id),
            id_context=bytes(row.id_context) if row.id_context is not None else None,
        )

    def strike(self, context_id: int, kid: bytes, seq: int, now: datetime | None = None) -> bool:
        """Record `seq` as used; False when it was used (or is too old) or the token is gone."""
        now = now or utcnow()

        def work(session: Session) -> bool:
            # The kid too: SQLite may give a replaced context's id to its successor.
            params = {"context_id": context_id, "kid": kid, "seq": seq, "now": now}
            fresh = session.execute(_STRIKE, params).rowcount == 1  # type: ignore[attr-defined]
            if fresh and seq % REPLAY_WINDOW == 0 and seq >= 2 * REPLAY_WINDOW:
                _slide(session, context_id, seq - REPLAY_WINDOW)
            return fresh

        return self.db.run_write(work)

    def strike_many(
        self, items: Sequence[tuple[int, bytes, int]], now: datetime | None = None
    ) -> list[bool]:
        """`strike` for many (context id, kid, seq) at once, in one transaction."""
        now = now or utcnow()

        def decide(conn: Connection) -> tuple[list[bool], list[Any]]:
            if conn.dialect.name == "postgresql":
                return _strike_all(conn, items, now), []
            answers = []
            for context_id, kid, seq in items:
                params = {"context_id": context_id, "kid": kid, "seq": seq, "now": now}
                fresh = conn.execute(_STRIKE, params).rowcount == 1
                if fresh and seq % REPLAY_WINDOW == 0 and seq >= 2 * REPLAY_WINDOW:
                    _slide_conn(conn, context_id, seq - REPLAY_WINDOW)
                answers.append(fresh)
            return answers, []

        return self.db.run_decided(decide)

    def reserve(self, context_id: int, count: int) -> int:
        """Reserve `count` of the hub's sequence numbers for this process; the first one."""

        def work(session: Session) -> int:
            end = session.execute(
                update(OscoreContext)
                .where(OscoreContext.id == context_id)
                .values(sender_seq_reserved=OscoreContext.sender_seq_reserved + count)
                .returning(OscoreContext.sender_seq_reserved)
            ).scalar_one_or_none()
            if end is None:
                raise ContextUnavailable("the context was removed")
            return int(end) - count

        return self.db.run_write(work)


def _slide(session: Session, context_id: int, floor: int) -> None:
    """Raise the floor and forget numbers below it: the window keeps a bounded set of rows."""
    session.execute(
        update(OscoreContext)
        .where(OscoreContext.id == context_id, OscoreContext.replay_floor < floor)
        .values(replay_floor=floor)
    )
    session.execute(
        delete(OscoreSeen).where(OscoreSeen.context_id == context_id, OscoreSeen.seq < floor)
    )


def _strike_all(
    conn: Connection, items: Sequence[tuple[int, bytes, int]], now: datetime
) -> list[bool]:
    """The batch in one INSERT; of two equal (context, seq) in it, the first is the fresh one."""
    params = {
        "cids": [item[0] for item in items],
        "kids": [item[1] for item in items],
        "seqs": [item[2] for item in items],
        "now": now,
    }
    inserted = {(row[0], row[1]) for row in conn.execute(_STRIKE_MANY_PG, params)}
    answers = []
    for context_id, _kid, seq in items:
        fresh = (context_id, seq) in inserted
        inserted.discard((context_id, seq))
        if fresh and seq % REPLAY_WINDOW == 0 and seq >= 2 * REPLAY_WINDOW:
            _slide_conn(conn, context_id, seq - REPLAY_WINDOW)
        answers.append(fresh)
    return answers


def _slide_conn(conn: Connection, context_id: int, floor: int) -> None:
    conn.execute(
        update(OscoreContext)
        .where(OscoreContext.id == context_id, OscoreContext.replay_floor < floor)
        .values(replay_floor=floor)
    )
    conn.execute(
        delete(OscoreSeen).where(OscoreSeen.context_id == context_id, OscoreSeen.seq < floor)
    )


_STOP = object()


class StrikeBatcher:
    """One writer thread striking out every waiting request's number in one transaction.

    Requests arriving together share a commit and a trip to the database, as presses do.
    """

    def __init__(self, store: ContextStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="hub-oscore-strike", daemon=True)
        self._thread.start()

    def strike(self, context_id: int, kid: bytes, seq: int) -> asyncio.Future[bool]:
        """Queue one strike-out (on the event loop); the future says whether it was fresh."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put((context_id, kid, seq, future, loop))
        return future

    def close(self) -> None:
        """Stop the writer thread once the queue is empty."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(item)
            try:
                answers: list[Any] = self.store.strike_many([item[:3] for item in batch])
            except Exception as exc:  # the database is away: every waiting request fails
                log.warning("strike-out failed: %s", exc)
                answers = [exc] * len(batch)
            for (_cid, _kid, _seq, future, loop), answer in zip(batch, answers, strict=True):
                loop.call_soon_threadsafe(_settle, future, answer)


def _settle(future: asyncio.Future[bool], answer: Any) -> None:
    if future.done():
        return
    if isinstance(answer, Exception):
        future.set_exception(answer)
    else:
        future.set_result(bool(answer))


def token_live(db: Database, kid: bytes) -> bool:
    """Whether the context with Recipient ID `kid` exists and its token still stands."""
    now = utcnow()

    def work(conn: Connection) -> Any:
        return conn.execute(
            text(
                "SELECT 1 FROM oscore_contexts c JOIN oauth_tokens t ON t.id = c.token_id "
                "LEFT JOIN device_links l ON l.id = t.link_id WHERE c.recipient_id = :kid "
                "AND t.revoked_at IS NULL AND t.expires_at > :now "
                "AND (t.link_id IS NULL OR l.status = 'active')"
            ),
            {"kid": kid, "now": now},
        ).first()

    return db.lookup(work) is not None
