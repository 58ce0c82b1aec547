"""A device cancels the order it placed: CoAP `/orders/{id}/cancel` and its HTTP twin."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import cbor2
from aiocoap import GET, POST, Context, Message
from aiocoap.numbers.codes import Code
from flask import Flask
from sqlalchemy import select, update

from auth.principal import DEVICE_SCOPES
from auth.tokens import issue_token
from device_hub.simulate import DeviceOptions, SimulatedDevice, Tokens
from orders.services.devices import LinkRules, link_device
from orders.services.ordering import press
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, Order
from tests.e2e.hub_fixtures import CoapClient, Devices, RunningHub, build_devices, client, hub
from tests.factories import db_snapshot, shopper_with_address

__all__ = ["client", "hub"]  # fixtures used by name


def _status(db: Database, order_id: str) -> str:
    with db.read() as session:
        return str(session.scalars(select(Order.status).where(Order.id == order_id)).one())


def _close_window(db: Database, order_id: str) -> None:
    with db.write() as session:
        past = utcnow() - timedelta(minutes=1)
        session.execute(update(Order).where(Order.id == order_id).values(cancel_until=past))


def _resell(db: Database, devices: Devices) -> str:
    """The button's link ends and a buyer links it: the buyer's device token."""
    world = devices.world
    with db.write() as session:
        old = session.get(DeviceLink, world.link_id)
        device = session.get(Device, world.device_id)
        assert old is not None and device is not None
        old.status, old.unlinked_at = "unlinked", utcnow()
        session.flush()
        buyer = shopper_with_address(session, name="Buyer")
        link = link_device(session, device, buyer, LinkRules())
        issued = issue_token(
            session,
            client_id=world.model_client_id,
            kind="device",
            scope=DEVICE_SCOPES,
            shopper_id=buyer.id,
            store_id=world.store_id,
            device_id=device.id,
            link_id=link.id,
        )
    return issued.access_token


# CoAP


def test_a_device_cancels_its_order_inside_the_window_and_observers_hear_it(
    db: Database, client: CoapClient
) -> None:
    """2.04 {order} cancelled, the order is cancelled, and an Observe notification arrives."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]

    async def observe_then_cancel(context: Context) -> tuple[Any, list[str]]:
        watch = Message(code=GET, uri=client.base + f"/orders/{placed['id']}", observe=0)
        pending = context.request(watch)
        statuses = [cbor2.loads((await pending.response).payload)["status"]]
        cancel = Message(
            code=POST,
            uri=client.base + f"/orders/{placed['id']}/cancel",
            payload=cbor2.dumps({"at": devices.button_token}),
            content_format=60,
        )
        answer = await context.request(cancel).response

        async def until_cancelled() -> None:
            async for notification in pending.observation:
                statuses.append(cbor2.loads(notification.payload)["status"])
                if statuses[-1] == "cancelled":
                    return

        await asyncio.wait_for(until_cancelled(), 15)
        pending.observation.cancel()
        return answer, statuses

    answer, statuses = client.run(observe_then_cancel, timeout=20)
    assert answer.code == Code.CHANGED
    order = cbor2.loads(answer.payload)["order"]
    assert order["id"] == placed["id"] and order["status"] == "cancelled"
    assert statuses[0] == "placed" and statuses[-1] == "cancelled"
    assert _status(db, placed["id"]) == "cancelled"


def test_a_cancel_in_json_is_answered_in_json(db: Database, client: CoapClient) -> None:
    """The reply uses the request's content-format."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    reply = client.post(
        f"/orders/{placed['id']}/cancel", {"at": devices.button_token}, json_format=True
    )
    assert reply.code == Code.CHANGED and reply.content_format == 50
    assert reply.body["order"]["status"] == "cancelled"


def test_a_device_cancels_its_order_waiting_for_approval(db: Database, client: CoapClient) -> None:
    """The device that asked may call off a pending_approval order."""
    devices = build_devices(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    assert placed["status"] == "pending_approval"
    reply = client.post(f"/orders/{placed['id']}/cancel", {"at": devices.button_token})
    assert reply.code == Code.CHANGED and reply.body["order"]["status"] == "cancelled"


def test_a_cancel_after_the_window_is_refused_too_late_and_changes_nothing(
    db: Database, client: CoapClient
) -> None:
    """4.03 {error: refused, reason: too_late}; the order stays placed."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    _close_window(db, placed["id"])
    before = db_snapshot(db)
    reply = client.post(f"/orders/{placed['id']}/cancel", {"at": devices.button_token})
    assert reply.code == Code.FORBIDDEN
    assert reply.body == {"error": "refused", "reason": "too_late"}
    assert db_snapshot(db) == before


def test_another_devices_order_is_not_found_and_unchanged(db: Database, client: CoapClient) -> None:
    """The appliance cannot cancel the button's order: 4.04, as for a missing one."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    before = db_snapshot(db)
    reply = client.post(f"/orders/{placed['id']}/cancel", {"at": devices.appliance_token})
    assert reply.code == Code.NOT_FOUND
    missing = client.post("/orders/nope/cancel", {"at": devices.button_token})
    assert missing.code == Code.NOT_FOUND
    assert db_snapshot(db) == before


def test_a_resold_device_cannot_cancel_the_previous_owners_order(
    db: Database, client: CoapClient
) -> None:
    """The buyer's token (a new link, the same device) gets 4.04 for the seller's order."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    buyer_token = _resell(db, devices)
    before = db_snapshot(db)
    reply = client.post(f"/orders/{placed['id']}/cancel", {"at": buyer_token})
    assert reply.code == Code.NOT_FOUND
    assert db_snapshot(db) == before


def test_a_bad_cancel_payload_or_token_changes_nothing(db: Database, client: CoapClient) -> None:
    """Not CBOR or not a map: 4.00; no token or a bad one: 4.01."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    path = f"/orders/{placed['id']}/cancel"
    before = db_snapshot(db)
    assert client.request(POST, path, b"\xff\x00", 60).code == Code.BAD_REQUEST
    assert client.request(POST, path, cbor2.dumps([1, 2]), 60).code == Code.BAD_REQUEST
    assert client.request(POST, path, b"x" * 2000, 60).code == Code.REQUEST_ENTITY_TOO_LARGE
    no_token = client.post(path, {})
    assert no_token.code == Code.UNAUTHORIZED and no_token.body["error"] == "invalid_token"
    assert client.post(path, {"at": "nope"}).code == Code.UNAUTHORIZED
    assert db_snapshot(db) == before


def test_the_simulator_cancels_the_order_its_press_placed(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """`simulate button --cancel`: press, then cancel that order, printing the answer."""
    devices = build_devices(db)
    lines: list[str] = []
    device = SimulatedDevice(
        DeviceOptions(kind="button", client_id=devices.world.model_client_id, serial="SN-1",
                      hub=hub.uri, presses=1, pause=0, cancel=True),
        out=lines.append,
    )  # fmt: skip

    async def scenario(context: Context) -> None:
        device.context = context
        now = asyncio.get_running_loop().time()
        device.tokens = Tokens(devices.button_token, None, now + 3600)
        await device.press()

    client.run(scenario)
    assert lines[0].startswith("press 1: 2.01 placed"), lines
    order_id = lines[0].split()[-1]
    assert lines[1] == f"cancel {order_id}: 2.04 cancelled"
    assert _status(db, order_id) == "cancelled"


# HTTP twin


def _cancel(
    app: Flask, token: str | None, order_id: str, body: bytes = b""
) -> tuple[int, dict[str, Any], str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = app.test_client().post(
        f"/api/v1/device/orders/{order_id}/cancel",
        data=body,
        headers=headers,
        content_type="application/json",
    )
    return response.status_code, response.get_json(), response.mimetype


def test_the_twin_cancels_inside_the_window(app: Flask, db: Database) -> None:
    """200 {order} with status cancelled, as CoAP's 2.04."""
    devices = build_devices(db)
    order = press(db, devices.world.device_id, 1).order
    status, body, _ = _cancel(app, devices.button_token, order.id)
    assert status == 200 and body["order"]["status"] == "cancelled"
    assert body["order"]["id"] == order.id
    assert _status(db, order.id) == "cancelled"


def test_the_twin_refuses_too_late_with_the_same_words(app: Flask, db: Database) -> None:
    """403 problem+json {error: refused, reason: too_late}; nothing changes."""
    devices = build_devices(db)
    order = press(db, devices.world.device_id, 1).order
    _close_window(db, order.id)
    before = db_snapshot(db)
    status, body, mimetype = _cancel(app, devices.button_token, order.id)
    assert status == 403 and mimetype == "application/problem+json"
    assert body["error"] == "refused" and body["reason"] == "too_late"
    assert db_snapshot(db) == before


def test_the_twin_hides_other_devices_and_previous_owners_orders(app: Flask, db: Database) -> None:
    """Another device's order, the seller's order after a resale, an unknown id: 404."""
    devices = build_devices(db)
    order = press(db, devices.world.device_id, 1).order
    buyer_token = _resell(db, devices)
    before = db_snapshot(db)
    for token, order_id in [
        (devices.appliance_token, order.id),
        (buyer_token, order.id),
        (devices.appliance_token, "nope"),
    ]:
        status, _, mimetype = _cancel(app, token, order_id)
        assert status == 404 and mimetype == "application/problem+json"
    assert db_snapshot(db) == before


def test_the_twin_refuses_a_bad_body_or_token_unchanged(app: Flask, db: Database) -> None:
    """Not JSON / not a map: 400; no token or a bad one: 401."""
    devices = build_devices(db)
    order = press(db, devices.world.device_id, 1).order
    before = db_snapshot(db)
    assert _cancel(app, devices.button_token, order.id, b"{nope")[0] == 400
    assert _cancel(app, devices.button_token, order.id, json.dumps([1]).encode())[0] == 400
    assert _cancel(app, None, order.id)[0] == 401
    assert _cancel(app, "nope", order.id)[0] == 401
    assert db_snapshot(db) == before
