"""The hub's OSCORE state in the database: strike-outs are atomic, revocation is immediate."""

from __future__ import annotations

import os

from sqlalchemy import update

from auth.ace import establish_context
from auth.model import OscoreContext, Token
from auth.principal import DEVICE_SCOPES
from auth.tokens import issue_token
from device_hub.oscore_store import REPLAY_WINDOW, ContextStore
from orders.store.db import Database, utcnow
from tests.factories import build_world


def _context(db: Database) -> tuple[int, bytes, int]:
    world = build_world(db, security="oscore")
    with db.write() as session:
        issued = issue_token(
            session, client_id=world.model_client_id, kind="device", scope=DEVICE_SCOPES,
            shopper_id=world.shopper_id, store_id=world.store_id, device_id=world.device_id,
            link_id=world.link_id, oscore=True,
        )  # fmt: skip
    made = establish_context(
        db, access_token=issued.access_token, nonce1=os.urandom(8), client_recipient_id=b"\x01"
    )
    with db.read() as session:
        context = session.get(OscoreContext, made.context_id)
        assert context is not None
        return context.id, context.recipient_id, context.token_id


def test_a_number_is_fresh_once_even_twice_in_one_batch(db: Database) -> None:
    """Two requests with one sequence number in a batch: the first runs, the second is a replay."""
    context_id, kid, _ = _context(db)
    store = ContextStore(db)
    assert store.strike_many(
        [(context_id, kid, 5), (context_id, kid, 5), (context_id, kid, 6)]
    ) == [
        True,
        False,
        True,
    ]
    assert store.strike_many([(context_id, kid, 5)]) == [False]
    assert store.strike(context_id, kid, 7) is True
    assert store.strike(context_id, kid, 7) is False


def test_numbers_behind_the_window_are_refused_after_it_slides(db: Database) -> None:
    """Once the newest number is far ahead, an old unused one is refused too (RFC 8613 §7.4)."""
    context_id, kid, _ = _context(db)
    store = ContextStore(db)
    assert store.strike_many([(context_id, kid, 3 * REPLAY_WINDOW)]) == [True]
    assert store.strike(context_id, kid, 1) is False
    assert store.strike(context_id, kid, 3 * REPLAY_WINDOW - 1) is True


def test_a_revoked_token_strikes_nothing(db: Database) -> None:
    """The token behind the context is revoked: every number is refused, in any process."""
    context_id, kid, token_id = _context(db)
    with db.write() as session:
        session.execute(update(Token).where(Token.id == token_id).values(revoked_at=utcnow()))
    assert ContextStore(db).strike_many([(context_id, kid, 1)]) == [False]
    assert ContextStore(db).strike(context_id, kid, 2) is False


def test_a_wrong_kid_for_the_context_strikes_nothing(db: Database) -> None:
    """A context id with another context's kid (a reused id on SQLite) matches nothing."""
    context_id, _kid, _ = _context(db)
    assert ContextStore(db).strike_many([(context_id, b"other", 1)]) == [False]
