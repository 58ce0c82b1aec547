"""Many device tokens checked in one query, on the caller's transaction (the hub's presses)."""

from __future__ import annotations

from sqlalchemy import update

from auth.model import Token
from auth.principal import DEVICE_SCOPES, InvalidToken, Principal
from auth.tokens import issue_token, token_hash, verify_access_tokens
from orders.store.db import Database, utcnow
from tests.factories import World, build_world


def _token(db: Database, world: World, scope: str = DEVICE_SCOPES) -> str:
    with db.write() as session:
        issued = issue_token(
            session,
            client_id=world.model_client_id,
            kind="device",
            scope=scope,
            shopper_id=world.shopper_id,
            store_id=world.store_id,
            device_id=world.device_id,
            link_id=world.link_id,
            with_refresh=False,
        )
    return issued.access_token


def test_each_token_gets_its_own_verdict_in_the_order_asked(db: Database) -> None:
    """Good (twice), revoked, too narrow, unknown and malformed tokens in one call."""
    world = build_world(db)
    good = _token(db, world)
    revoked = _token(db, world)
    narrow = _token(db, world, scope="orders:read")
    with db.write() as session:
        session.execute(
            update(Token)
            .where(Token.access_token_hash == token_hash(revoked))
            .values(revoked_at=utcnow())
        )
    asked = [good, revoked, narrow, "x" * 43, "short", good]
    with db.engine.connect() as conn:
        verdicts = verify_access_tokens(conn, asked, "orders:place", now=utcnow())
    assert isinstance(verdicts[0], Principal) and verdicts[0].device_id == world.device_id
    assert verdicts[5] == verdicts[0]
    refused = [v for v in verdicts[1:5] if isinstance(v, InvalidToken)]
    assert [(r.error, r.detail) for r in refused] == [
        ("invalid_token", "unknown, expired or revoked token"),
        ("insufficient_scope", "needs orders:place"),
        ("invalid_token", "unknown, expired or revoked token"),
        ("invalid_token", "malformed token"),
    ]


def test_a_revocation_counts_from_the_next_call(db: Database) -> None:
    """No cache: the same connection sees the token revoked on the very next check."""
    world = build_world(db)
    token = _token(db, world)
    with db.engine.connect() as conn:
        first = verify_access_tokens(conn, [token], "orders:place", now=utcnow())
        conn.commit()
        with db.write() as session:
            session.execute(update(Token).values(revoked_at=utcnow()))
        second = verify_access_tokens(conn, [token], "orders:place", now=utcnow())
    assert isinstance(first[0], Principal)
    assert isinstance(second[0], InvalidToken)
