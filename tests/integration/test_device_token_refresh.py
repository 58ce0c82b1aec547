"""Short-lived device access tokens, renewed with rotating refresh tokens (#14 item 7),
and a device-code table that one client can't fill (#14 item 4)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiocoap import Context
from aiocoap.numbers.codes import Code
from flask import Flask
from sqlalchemy import func, select, update

from auth import device_flow
from auth.device_flow import DeviceFlowError, start_device_authorization
from auth.model import DeviceCode, Token
from auth.principal import DEVICE_SCOPES, InvalidToken
from auth.tokens import IssuedToken, issue_token, verify_access_token
from auth.unit_secrets import set_unit_secrets
from device_hub.simulate import DeviceOptions, SimulatedDevice, Tokens
from orders.store.db import Database, utcnow
from orders.store.model import DeviceModel
from tests.auth_fixtures import OAuthWorld, build_oauth_world
from tests.device_link_helpers import link_over_http
from tests.e2e.hub_fixtures import CoapClient, RunningHub, build_devices, client, hub
from tests.factories import count, db_snapshot

__all__ = ["client", "hub"]  # fixtures used by name
PUBLIC = "http://restock.test"
PAD = "." * 100  # /link requests are padded to a third of the answer (README)


def _device_pair(db: Database) -> tuple[str, IssuedToken]:
    """The test world's button and a device token pair for it (as the device flow issues)."""
    devices = build_devices(db)
    world = devices.world
    with db.write() as session:
        issued = issue_token(
            session,
            client_id=world.model_client_id,
            kind="device",
            scope=DEVICE_SCOPES,
            shopper_id=world.shopper_id,
            store_id=world.store_id,
            device_id=world.device_id,
            link_id=world.link_id,
        )
    return world.model_client_id, issued


def _refresh(client_id: str, refresh_token: str) -> dict[str, str]:
    return {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": refresh_token}


def test_device_access_tokens_live_a_day_and_their_refresh_tokens_a_year(
    app: Flask, db: Database
) -> None:
    """The device flow's answer says expires_in 86400; the refresh token outlives it."""
    o = build_oauth_world(db)
    issued = link_over_http(app, db, o.shopper_account_id, o.button, "TTL-1")
    assert issued["expires_in"] == 24 * 3600
    with db.read() as session:
        token = session.scalars(select(Token)).one()
        assert token.refresh_expires_at is not None
        assert token.refresh_expires_at - token.issued_at == timedelta(days=365)


def test_a_device_refreshes_over_coap_and_the_old_access_token_dies(
    db: Database, client: CoapClient
) -> None:
    """/link/token with the refresh grant: a new pair (2.05); the old access token is revoked."""
    client_id, issued = _device_pair(db)
    assert issued.refresh_token is not None
    reply = client.post("/link/token", _refresh(client_id, issued.refresh_token))
    assert reply.code == Code.CONTENT, reply.body
    assert set(reply.body) == {"access_token", "refresh_token", "expires_in", "device_id"}
    assert reply.body["expires_in"] == 24 * 3600
    assert reply.body["refresh_token"] != issued.refresh_token
    with pytest.raises(InvalidToken):
        verify_access_token(db, issued.access_token)
    pressed = client.post("/press", {"at": reply.body["access_token"], "seq": 1})
    assert pressed.code == Code.CREATED
    stale = client.post("/press", {"at": issued.access_token, "seq": 2})
    assert stale.code == Code.UNAUTHORIZED


def test_a_replayed_refresh_token_revokes_the_whole_family_over_coap(
    db: Database, client: CoapClient
) -> None:
    """Reusing a rotated refresh token is invalid_grant and ends the newest pair too."""
    client_id, issued = _device_pair(db)
    assert issued.refresh_token is not None
    fresh = client.post("/link/token", _refresh(client_id, issued.refresh_token)).body
    replay = client.post("/link/token", _refresh(client_id, issued.refresh_token))
    assert replay.code == Code.BAD_REQUEST and replay.body == {"error": "invalid_grant"}
    with pytest.raises(InvalidToken):
        verify_access_token(db, fresh["access_token"])
    again = client.post("/link/token", _refresh(client_id, fresh["refresh_token"]))
    assert again.body == {"error": "invalid_grant"}


def test_bad_refresh_requests_over_coap_change_nothing(db: Database, client: CoapClient) -> None:
    """Unknown client, another client's token, a bad grant type, no token: 4.00, no change."""
    client_id, issued = _device_pair(db)
    assert issued.refresh_token is not None
    other_client = _appliance_client(db)
    before = db_snapshot(db)
    cases = [
        (_refresh("nobody", issued.refresh_token), "invalid_client"),
        (_refresh(other_client, issued.refresh_token), "invalid_grant"),
        ({**_refresh(client_id, issued.refresh_token), "grant_type": "password"},
         "unsupported_grant_type"),
        ({"client_id": client_id, "grant_type": "refresh_token"}, "invalid_request"),
        (_refresh(client_id, "x" * 43), "invalid_grant"),
    ]  # fmt: skip
    for body, error in cases:
        reply = client.post("/link/token", body)
        assert reply.code == Code.BAD_REQUEST and reply.body == {"error": error}, body
    assert db_snapshot(db) == before


def _appliance_client(db: Database) -> str:
    """Another device client of the same store (the coffee machine model's)."""
    with db.read() as session:
        query = select(DeviceModel.client_id).where(DeviceModel.kind == "appliance")
        return session.scalars(query).one()


def test_an_http_refresh_of_a_device_token_ends_the_old_access_token(
    app: Flask, db: Database
) -> None:
    """/oauth/token refresh_token for a device: new pair bound to the link; the old one dies."""
    o: OAuthWorld = build_oauth_world(db)
    issued = link_over_http(app, db, o.shopper_account_id, o.button, "HTTP-1")
    http = app.test_client()
    fresh = http.post("/oauth/token", data=_refresh(o.button, issued["refresh_token"]))
    assert fresh.status_code == 200, fresh.text
    body = fresh.get_json()
    assert body["expires_in"] == 24 * 3600 and body["device_id"] == issued["device_id"]
    with pytest.raises(InvalidToken):
        verify_access_token(db, issued["access_token"])
    assert verify_access_token(db, body["access_token"]).device_id == issued["device_id"]
    replay = http.post("/oauth/token", data=_refresh(o.button, issued["refresh_token"]))
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    with pytest.raises(InvalidToken):
        verify_access_token(db, body["access_token"])


def test_the_simulator_renews_its_token_when_the_hub_says_it_expired(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """`python -m restock simulate`: a press answered 4.01 refreshes once, then goes through."""
    client_id, issued = _device_pair(db)
    with db.write() as session:  # the access token ran out while the device slept
        session.execute(update(Token).values(expires_at=utcnow() - timedelta(seconds=1)))
    lines: list[str] = []
    device = SimulatedDevice(
        DeviceOptions(kind="button", client_id=client_id, serial="SN-1", hub=hub.uri,
                      presses=1, pause=0),
        out=lines.append,
    )  # fmt: skip

    async def scenario(context: Context) -> None:
        device.context = context
        now = asyncio.get_running_loop().time()
        device.tokens = Tokens(issued.access_token, issued.refresh_token, now + 3600)
        await device.press()

    client.run(scenario)
    assert "access token renewed" in lines
    assert any(line.startswith("press 1: 2.01 placed") for line in lines), lines
    assert device.tokens is not None and device.tokens.access_token != issued.access_token


def test_the_simulator_renews_its_token_before_it_expires(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """A token past 90% of its lifetime is renewed before the next send."""
    client_id, issued = _device_pair(db)
    lines: list[str] = []
    device = SimulatedDevice(
        DeviceOptions(kind="button", client_id=client_id, serial="SN-1", hub=hub.uri,
                      presses=1, pause=0),
        out=lines.append,
    )  # fmt: skip

    async def scenario(context: Context) -> None:
        device.context = context
        now = asyncio.get_running_loop().time()
        device.tokens = Tokens(issued.access_token, issued.refresh_token, now - 1)
        await device.press()

    client.run(scenario)
    assert lines[0] == "access token renewed"
    with pytest.raises(InvalidToken):
        verify_access_token(db, issued.access_token)


def _codes(db: Database) -> int:
    return count(db, DeviceCode)


def test_expired_device_codes_are_purged_when_new_ones_are_made(db: Database) -> None:
    """Codes expired for over PURGE_AFTER go; recently expired ones still answer expired_token."""
    client_id, _ = _device_pair(db)
    long_ago = utcnow() - timedelta(hours=2)
    for _ in range(3):
        start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=long_ago)
    assert _codes(db) == 3
    recent = utcnow() - device_flow.DEVICE_CODE_TTL - timedelta(minutes=1)
    kept = start_device_authorization(db, client_id=client_id, public_url=PUBLIC, now=recent)
    assert _codes(db) == 1
    start_device_authorization(db, client_id=client_id, public_url=PUBLIC)
    assert _codes(db) == 2
    with pytest.raises(DeviceFlowError) as expired:
        device_flow.poll_device_token(db, client_id=client_id, device_code=kept.device_code)
    assert expired.value.error == "expired_token"


def test_one_serial_holds_at_most_three_pending_codes(db: Database) -> None:
    """A device (or someone using its serial) asking again and again drops its oldest codes."""
    client_id, _ = _device_pair(db)
    started = [
        start_device_authorization(db, client_id=client_id, public_url=PUBLIC, serial="LOOP-1")
        for _ in range(6)
    ]
    with db.read() as session:
        live = session.scalar(
            select(func.count()).select_from(DeviceCode).where(DeviceCode.serial == "LOOP-1")
        )
    assert live == device_flow.MAX_PENDING_PER_SERIAL
    with pytest.raises(DeviceFlowError) as dropped:
        device_flow.poll_device_token(db, client_id=client_id, device_code=started[0].device_code)
    assert dropped.value.error == "invalid_grant"
    with pytest.raises(DeviceFlowError) as newest:
        device_flow.poll_device_token(db, client_id=client_id, device_code=started[-1].device_code)
    assert newest.value.error == "authorization_pending"


def test_a_client_with_a_full_table_of_live_codes_is_told_to_slow_down(
    db: Database, client: CoapClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the per-client cap a new /link is 4.00 slow_down and stores nothing."""
    monkeypatch.setattr(device_flow, "MAX_PENDING_PER_CLIENT", 4)
    client_id, _ = _device_pair(db)
    for n in range(4):
        reply = client.post("/link", {"client_id": client_id, "serial": f"FLOOD-{n}", "pad": PAD})
        assert reply.code == Code.CREATED
    before = db_snapshot(db)
    refused = client.post("/link", {"client_id": client_id, "serial": "FLOOD-X", "pad": PAD})
    assert refused.code == Code.BAD_REQUEST and refused.body == {"error": "slow_down"}
    assert db_snapshot(db) == before


def test_coap_link_of_a_model_requiring_unit_secrets_needs_the_units_secret(
    db: Database, client: CoapClient
) -> None:
    """/link without or with a wrong unit_secret is 4.00 invalid_client; the right one links."""
    client_id, _ = _device_pair(db)
    with db.read() as session:
        model_id = session.scalars(
            select(DeviceModel.id).where(DeviceModel.client_id == client_id)
        ).one()
        store_id = session.scalars(
            select(DeviceModel.store_id).where(DeviceModel.id == model_id)
        ).one()
    set_unit_secrets(db, store_id, model_id, [("UNIT-9", "unit-nine-secret-123")], required=True)
    before = db_snapshot(db)
    for extra in ({}, {"unit_secret": "unit-nine-secret-124"}, {"unit_secret": 5}):
        reply = client.post(
            "/link", {"client_id": client_id, "serial": "UNIT-9", "pad": PAD, **extra}
        )
        assert reply.code == Code.BAD_REQUEST, extra
        assert reply.body["error"] in ("invalid_client", "invalid_request")
    assert db_snapshot(db) == before
    right = {"unit_secret": "unit-nine-secret-123", "pad": PAD}
    ok = client.post("/link", {"client_id": client_id, "serial": "UNIT-9", **right})
    assert ok.code == Code.CREATED
