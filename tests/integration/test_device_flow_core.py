"""The RFC 8628 device flow and token checks, below any HTTP or CoAP adapter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth.accounts import authenticate, create_account
from auth.device_flow import (
    DeviceFlowError,
    decide_device,
    normalize_user_code,
    pending_device,
    poll_device_token,
    start_device_authorization,
)
from auth.model import OAuthClient, Token
from auth.principal import DEVICE_SCOPES, InvalidToken
from auth.tokens import revoke_link_tokens, verify_access_token
from orders.services.addresses import add_address
from orders.services.devices import LinkRules, active_link, unlink
from orders.services.ordering import press
from orders.store.db import Database, utcnow
from tests.factories import HOME, build_world

PUBLIC = "http://restock.test"


def _setup(db: Database) -> tuple[str, int]:
    world = build_world(db)
    with db.write() as session:
        session.add(
            OAuthClient(
                client_id=world.model_client_id,
                name="Button",
                kind="device_model",
                store_id=world.store_id,
                scope=DEVICE_SCOPES,
            )
        )
        account = create_account(
            session, email="link@example.test", password="correct horse battery", shopper_name="L"
        )
        add_address(session, account.shopper_id, HOME)
    return world.model_client_id, account.id


def test_user_codes_are_accepted_with_or_without_dash_in_any_case() -> None:
    """`bcdf-ghjk`, `BCDFGHJK` and ` bcdfghjk ` are one code; vowels are not allowed."""
    assert normalize_user_code("bcdf-ghjk") == "BCDFGHJK"
    assert normalize_user_code(" BCDFGHJK ") == "BCDFGHJK"
    assert normalize_user_code("ABCD-EFGH") is None
    assert normalize_user_code("BCDF-GHJ") is None


def test_device_links_through_the_whole_flow_and_its_token_presses(db: Database) -> None:
    """Start, pending, approve with a product, redeem once, press with the token."""
    client_id, account_id = _setup(db)
    now = utcnow()
    start = start_device_authorization(
        db, client_id=client_id, public_url=PUBLIC, serial="NEW-1", now=now
    )
    assert start.verification_uri == f"{PUBLIC}/link"
    assert start.user_code[4] == "-" and len(start.user_code) == 9
    with pytest.raises(DeviceFlowError) as pending:
        poll_device_token(db, client_id=client_id, device_code=start.device_code, now=now)
    assert pending.value.error == "authorization_pending"
    shown = pending_device(db, start.user_code.lower(), now=now)
    assert shown.model_name == "Button" and ("PODS", "Coffee pods (EUR 5.00)") in shown.products
    link_id = decide_device(
        db,
        user_code=start.user_code,
        account_id=account_id,
        approve=True,
        rules=LinkRules(product_sku="PODS"),
        now=now,
    )
    assert link_id is not None
    later = now + timedelta(seconds=6)
    token = poll_device_token(db, client_id=client_id, device_code=start.device_code, now=later)
    principal = verify_access_token(db, token.access_token, "orders:place")
    assert principal.kind == "device" and principal.link_id == link_id
    assert principal.device_id == token.device_id
    assert press(db, principal.device_id or 0, 1).outcome == "placed"
    with pytest.raises(DeviceFlowError) as again:
        poll_device_token(
            db, client_id=client_id, device_code=start.device_code, now=later + timedelta(seconds=6)
        )
    assert again.value.error == "invalid_grant"
    with db.read() as session:
        assert len(session.scalars(select(Token)).all()) == 1


def test_polling_too_fast_is_slow_down_and_the_interval_grows(db: Database) -> None:
    """Two polls inside the interval: the second is `slow_down` (+5 s)."""
    client_id, _ = _setup(db)
    now = utcnow()
    start = start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=now)
    with pytest.raises(DeviceFlowError):
        poll_device_token(db, client_id=client_id, device_code=start.device_code, now=now)
    with pytest.raises(DeviceFlowError) as fast:
        poll_device_token(
            db, client_id=client_id, device_code=start.device_code, now=now + timedelta(seconds=1)
        )
    assert fast.value.error == "slow_down"
    with pytest.raises(DeviceFlowError) as still_fast:
        poll_device_token(
            db, client_id=client_id, device_code=start.device_code, now=now + timedelta(seconds=8)
        )
    assert still_fast.value.error == "slow_down"


def test_denied_and_expired_codes_answer_their_rfc_words(db: Database) -> None:
    """Deny → `access_denied`; after 10 minutes → `expired_token`; unknown → `invalid_grant`."""
    client_id, account_id = _setup(db)
    now = utcnow()
    denied = start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=now)
    decide_device(db, user_code=denied.user_code, account_id=account_id, approve=False, now=now)
    with pytest.raises(DeviceFlowError) as err:
        poll_device_token(db, client_id=client_id, device_code=denied.device_code, now=now)
    assert err.value.error == "access_denied"
    old = start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=now)
    with pytest.raises(DeviceFlowError) as expired:
        poll_device_token(
            db, client_id=client_id, device_code=old.device_code, now=now + timedelta(minutes=11)
        )
    assert expired.value.error == "expired_token"
    with pytest.raises(DeviceFlowError) as unknown:
        poll_device_token(db, client_id=client_id, device_code="x" * 43, now=now)
    assert unknown.value.error == "invalid_grant"
    with pytest.raises(DeviceFlowError) as bad_client:
        start_device_authorization(db, client_id="nope", public_url=PUBLIC, now=now)
    assert bad_client.value.error == "invalid_client"


def test_unlinking_makes_the_device_token_invalid_at_once(db: Database) -> None:
    """Revocation is visible on the very next check (no stale cache)."""
    client_id, account_id = _setup(db)
    now = utcnow()
    start = start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=now)
    decide_device(db, user_code=start.user_code, account_id=account_id, approve=True, now=now)
    token = poll_device_token(
        db, client_id=client_id, device_code=start.device_code, now=now + timedelta(seconds=5)
    )
    principal = verify_access_token(db, token.access_token, "devices:telemetry")
    with pytest.raises(InvalidToken) as narrow:
        verify_access_token(db, token.access_token, "merchant:admin")
    assert narrow.value.error == "insufficient_scope"
    with db.write() as session:
        link = active_link(session, principal.device_id or 0)
        assert link is not None
        revoke_link_tokens(session, link.id)
        unlink(session, link)
    with pytest.raises(InvalidToken):
        verify_access_token(db, token.access_token, "orders:place")


def test_passwords_are_hashed_and_checked(db: Database) -> None:
    """Accounts store argon2 hashes; wrong passwords and unknown emails both fail."""
    with db.write() as session:
        account = create_account(session, email="A@Example.test", password="long enough pw")
        assert account.password_hash.startswith("$argon2id$")
    assert authenticate(db, "a@example.test", "long enough pw") is not None
    assert authenticate(db, "a@example.test", "wrong password") is None
    assert authenticate(db, "nobody@example.test", "long enough pw") is None
