"""Attacks on the hub's ingress over real UDP: decoder bombs, amplification, Observe floods."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from aiocoap import ACK, CON, GET, NON, POST, PUT, RST, Message
from aiocoap.numbers.codes import Code

from auth.model import DeviceCode
from device_hub.limits import AMPLIFICATION, Rate
from device_hub.resources import LINK_RATE, MAX_OBSERVERS_PER_ORDER
from orders.services.lifecycle import mark_delivered, mark_shipped
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database
from tests.e2e.hub_fixtures import (
    GENEROUS,
    CoapClient,
    Devices,
    RunningHub,
    build_devices,
    client,
    hub,
    start_hub,
    stop_hub,
)
from tests.factories import count, db_snapshot
from tests.unit.test_hub_ingress import shared_reference_dag

__all__ = ["client", "hub"]  # fixtures used by name
pytestmark = pytest.mark.e2e
EMPTY = Code.EMPTY


class RawPeer:
    """A bare UDP socket speaking CoAP by hand: the exact datagrams out and in."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(10)
        self.address = ("127.0.0.1", port)
        self.mids = itertools.count(secrets.randbelow(30_000))

    def send(self, message: Message) -> bytes:
        """Send `message` (NON unless typed) with a fresh message id; returns its bytes."""
        if message.mtype is None:
            message.mtype = NON
        message.mid = next(self.mids) % 65536
        data: bytes = message.encode()
        self.sock.sendto(data, self.address)
        return data

    def receive(self) -> tuple[bytes, Message]:
        """The next datagram that is not an empty ACK, and the message it holds."""
        while True:
            data = self.sock.recv(4096)
            message = Message.decode(data)
            if message.code != EMPTY:
                return data, message

    def exchange(self, message: Message) -> tuple[int, bytes, Message]:
        """Send `message`, return its size, the answer's bytes and the answer."""
        sent = self.send(message)
        data, answer = self.receive()
        return len(sent), data, answer

    def reply_empty(self, mtype: Any, mid: int) -> None:
        """An empty ACK or RST for the hub's confirmable message `mid`."""
        empty = Message(code=EMPTY)
        empty.mtype, empty.mid = mtype, mid
        self.sock.sendto(empty.encode(), self.address)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


@pytest.fixture
def peer(hub: RunningHub) -> Iterator[RawPeer]:
    """A raw CoAP peer pointed at the running hub."""
    raw = RawPeer(hub.port)
    try:
        yield raw
    finally:
        raw.close()


def request(
    code: Code, *path: str, payload: bytes = b"", token: bytes = b"", **opts: Any
) -> Message:
    """A request with exactly these options (no Uri-Host, unlike Message(uri=…))."""
    message = Message(code=code, payload=payload, _token=token)
    message.opt.uri_path = path
    for name, value in opts.items():
        setattr(message.opt, name, value)
    return message


def on_hub(running: RunningHub, make: Any) -> Any:
    """Evaluate `make()` on the hub's loop (its observer tables live there)."""

    async def read() -> Any:
        return make()

    return running.runner.call(read())


# --- 1. The CBOR shared-reference datagram ------------------------------------------------


def test_a_shared_reference_datagram_is_refused_while_another_client_is_served(
    db: Database, hub: RunningHub, client: CoapClient, peer: RawPeer
) -> None:
    """A flood of DAG datagrams (20**6 paths each) is answered 4.00; a press meanwhile is placed."""
    devices = build_devices(db)
    attack = shared_reference_dag(20)
    assert len(attack) < 400
    stop = threading.Event()
    answers: list[Message] = []

    def flood() -> None:
        for _ in range(2000):  # a bound on the flood, far beyond what the press needs
            if stop.is_set():
                return
            peer.send(request(POST, "press", payload=attack, content_format=60))
            time.sleep(0.002)

    def drain() -> None:
        peer.sock.settimeout(2)
        with contextlib.suppress(TimeoutError):
            while True:
                answers.append(peer.receive()[1])

    sender, receiver = threading.Thread(target=flood), threading.Thread(target=drain)
    sender.start()
    receiver.start()
    try:
        # Ordering, not timing: the press is sent, and answered, while the flood goes on.
        body = cbor2.dumps({"at": devices.button_token, "seq": 1})
        pressed = client.request(POST, "/press", body, 60, timeout=20)
        still_sending = sender.is_alive()
    finally:
        stop.set()
        sender.join()
        receiver.join()
    assert pressed.code == Code.CREATED and cbor2.loads(pressed.payload)["result"] == "placed"
    assert still_sending
    assert answers and {answer.code for answer in answers} == {Code.BAD_REQUEST}
    assert cbor2.loads(answers[0].payload)["error"] == "bad_payload"


# --- 4. Amplification: every unauthenticated answer within 3x its request -----------------


def _unauthenticated_requests(devices: Devices, link_min: int, order_id: str) -> list[Message]:
    client_id = devices.world.model_client_id
    short_link = cbor2.dumps({"client_id": client_id, "serial": "B-1"})
    padded = {"client_id": client_id, "serial": "B-1", "pad": ""}
    padded["pad"] = "." * (link_min - len(cbor2.dumps(padded)) - 1)
    assert len(cbor2.dumps(padded)) == link_min  # exactly the smallest accepted /link
    json_padded = dict(padded, pad="")
    json_padded["pad"] = "." * (link_min - len(json.dumps(json_padded)))
    return [
        request(GET, ".well-known", "core"),
        request(GET, ".well-known", "core", uri_query=("rt=restock.press",)),
        request(POST, "link"),
        request(POST, "link", payload=b"\xa0", content_format=60),
        request(POST, "link", payload=short_link, content_format=60),
        request(POST, "link", payload=cbor2.dumps(padded), content_format=60),
        request(POST, "link", payload=json.dumps(json_padded).encode(), content_format=50),
        request(POST, "link", payload=cbor2.dumps(dict(padded, client_id="nobody"))),
        request(POST, "link", "token", payload=cbor2.dumps({"client_id": "c", "device_code": "d"})),
        request(POST, "press"),
        request(POST, "press", payload=b"\xa0"),
        request(POST, "press", payload=b"{}", content_format=50),
        request(POST, "press", payload=cbor2.dumps({"at": "x", "seq": 1})),
        request(POST, "press", payload=b"\xa1\x61a", content_format=0),
        request(POST, "press", payload=shared_reference_dag(12)),
        request(POST, "telemetry", payload=b"\xa0"),
        request(POST, "orders", order_id, "cancel", payload=b"\xa0"),
        request(GET, "orders", "nope"),
        request(GET, "orders", order_id),
        request(GET, "orders", order_id, observe=0),
        request(GET, "orders", order_id, accept=50),
        request(GET, "nowhere"),
        request(PUT, "press"),
    ]


@pytest.mark.parametrize("token", [b"", b"\x01\x02\x03\x04\x05\x06\x07\x08"])
def test_every_unauthenticated_answer_stays_within_three_times_its_request(
    db: Database, hub: RunningHub, client: CoapClient, peer: RawPeer, token: bytes
) -> None:
    """RFC 7252 §11.3, datagram against datagram: errors, discovery, /link, order status."""
    devices = build_devices(db)
    order_id = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]["id"]
    link_min = hub.hub.services.link_min_payload
    answered = []
    for message in _unauthenticated_requests(devices, link_min, order_id):
        message.token = token
        sent, data, answer = peer.exchange(message)
        answered.append((message.opt.uri_path, answer.code))
        assert len(data) <= AMPLIFICATION * sent, (message, answer, len(data), sent)
    codes = [code for _path, code in answered]
    assert Code.CREATED in codes  # the padded /link succeeded, within the bound too
    assert codes.count(Code.CONTENT) >= 4  # discovery (a block) and order status


def test_discovery_arrives_whole_in_blocks_that_each_fit_the_bound(
    hub: RunningHub, client: CoapClient, peer: RawPeer
) -> None:
    """Block2 after block2, each answer within 3x its request; together, the full listing."""
    whole = client.request(GET, "/.well-known/core").payload  # aiocoap reassembles blocks
    assert b'rt="restock.link"' in whole
    collected = b""
    number, size_exp = 0, 6
    while True:
        message = request(GET, ".well-known", "core")
        if number:
            message.opt.block2 = (number, False, size_exp)
        sent, data, answer = peer.exchange(message)
        assert answer.code == Code.CONTENT and len(data) <= AMPLIFICATION * sent
        block = answer.opt.block2
        assert block is not None
        collected += answer.payload
        if not block.more:
            break
        number, size_exp = block.block_number + 1, block.size_exponent
    assert collected == whole


def test_a_rate_limited_answer_stays_within_the_bound(db: Database) -> None:
    """4.29 carries Max-Age and as much of its body as fits 3x the request."""
    running = start_hub(db, source_rate=Rate(per_second=0.01, burst=1))
    raw = RawPeer(running.port)
    try:
        raw.exchange(request(GET, "orders", "nope"))
        sent, data, answer = raw.exchange(request(GET, "orders", "nope"))
        wkc_sent, wkc_data, wkc = raw.exchange(request(GET, ".well-known", "core"))
    finally:
        raw.close()
        stop_hub(running)
    assert answer.code == Code.TOO_MANY_REQUESTS and answer.opt.max_age
    assert len(data) <= AMPLIFICATION * sent
    assert wkc.code == Code.TOO_MANY_REQUESTS  # discovery is under the per-address limit
    assert len(wkc_data) <= AMPLIFICATION * wkc_sent


def test_link_datagrams_from_one_address_cannot_fill_the_device_code_table(db: Database) -> None:
    """Past the /link burst an address gets 4.29 and no new device codes, however many it sends."""
    running = start_hub(db)  # generous general limits; /link keeps its own
    coap = CoapClient(running.uri)
    try:
        devices = build_devices(db)
        # Distinct serials: one serial alone keeps at most MAX_PENDING_PER_SERIAL codes anyway.
        body = {"client_id": devices.world.model_client_id, "pad": "." * 100}
        codes = [
            coap.post("/link", {**body, "serial": f"S-{n}"}).code
            for n in range(int(LINK_RATE.burst) + 5)
        ]
    finally:
        coap.close()
        stop_hub(running)
    assert codes.count(Code.CREATED) == LINK_RATE.burst
    assert codes[-1] == Code.TOO_MANY_REQUESTS
    assert count(db, DeviceCode) == LINK_RATE.burst


def test_a_short_link_request_is_told_to_pad_and_changes_nothing(
    db: Database, client: CoapClient
) -> None:
    """4.00 {error: bad_payload, pad_to}: the size to pad to, and no device code stored."""
    devices = build_devices(db)
    before = db_snapshot(db)
    reply = client.post("/link", {"client_id": devices.world.model_client_id, "serial": "S"})
    assert reply.code == Code.BAD_REQUEST
    assert reply.body["error"] == "bad_payload" and isinstance(reply.body["pad_to"], int)
    assert db_snapshot(db) == before
    padded = client.post(
        "/link",
        {
            "client_id": devices.world.model_client_id,
            "serial": "S",
            "pad": "." * reply.body["pad_to"],
        },
    )
    assert padded.code == Code.CREATED


# --- 4. Observe: per-order and per-address caps, confirmable notifications -----------------


def _placed_order(db: Database, client: CoapClient) -> tuple[Devices, str]:
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1})
    return devices, str(placed.body["order"]["id"])


def test_two_hundred_registrations_from_one_source_cost_one_change_few_datagrams(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """Of 200 Observe registrations of one order, at most the per-order cap are kept."""
    devices, order_id = _placed_order(db, client)

    async def flood(context: Any) -> tuple[int, int]:
        pendings = [
            context.request(Message(code=GET, uri=f"{client.base}/orders/{order_id}", observe=0))
            for _ in range(200)
        ]
        firsts = await asyncio.gather(*(pending.response for pending in pendings))
        accepted = [
            p for p, first in zip(pendings, firsts, strict=True) if first.opt.observe is not None
        ]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: mark_shipped(db, order_id, devices.world.store_id))
        notified = 0

        async def shipped(pending: Any) -> None:
            nonlocal notified
            async for note in pending.observation:
                notified += 1
                if cbor2.loads(note.payload)["status"] == "shipped":
                    return

        await asyncio.wait_for(asyncio.gather(*(shipped(p) for p in accepted)), 15)
        await asyncio.sleep(0.5)  # room for any notification beyond the accepted ones
        for pending in pendings:
            if not pending.observation.cancelled:
                pending.observation.cancel()
        return len(accepted), notified

    accepted, notified = client.run(flood, timeout=60)
    assert 1 <= accepted <= MAX_OBSERVERS_PER_ORDER
    assert notified <= accepted * 2  # a late creation event may repeat "placed" once
    table = on_hub(hub, lambda: len(hub.hub.orders.observers.get(order_id, ())))
    assert table <= MAX_OBSERVERS_PER_ORDER


def test_one_address_holds_at_most_its_cap_of_observations(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """Past the per-address cap a registration is answered once, without Observe."""
    devices, order_id = _placed_order(db, client)
    # A web order: the appliance's pods would answer in_progress with the press's order.
    world = devices.world
    web = OrderRequest(world.store_id, world.shopper_id, "web", (LineRequest("PODS", 1),))
    second_order = place_order(db, web).order.id
    on_hub(hub, lambda: setattr(hub.hub.orders, "max_per_source", 1))

    async def register(context: Any) -> list[bool]:
        pendings, firsts = [], []
        for oid in (order_id, second_order):  # one after the other: the first is kept
            message = Message(code=GET, uri=f"{client.base}/orders/{oid}", observe=0)
            pendings.append(context.request(message))
            firsts.append(await pendings[-1].response)
        for pending in pendings:
            if not pending.observation.cancelled:
                pending.observation.cancel()
        return [first.opt.observe is not None for first in firsts]

    assert client.run(register) == [True, False]


def test_an_observer_that_resets_a_confirmable_notification_is_dropped(
    db: Database, hub: RunningHub, client: CoapClient, peer: RawPeer
) -> None:
    """A NON registration is asked to confirm now and then (RFC 7641 §4.5); a reset ends it."""
    devices, order_id = _placed_order(db, client)
    on_hub(hub, lambda: setattr(hub.hub.orders, "confirm_every", 0.0))
    token = secrets.token_bytes(4)
    _, _, first = peer.exchange(request(GET, "orders", order_id, observe=0, token=token))
    assert first.code == Code.CONTENT and first.opt.observe is not None
    assert on_hub(hub, lambda: len(hub.hub.orders.observers.get(order_id, ()))) == 1
    mark_shipped(db, order_id, devices.world.store_id)
    while True:  # acknowledge a late notification of the creation event, if any
        _, note = peer.receive()
        if cbor2.loads(note.payload)["status"] == "shipped":
            break
        if note.mtype == CON:
            peer.reply_empty(ACK, note.mid)
    assert note.mtype == CON and note.token == token
    peer.reply_empty(RST, note.mid)
    for _ in range(100):  # a bounded wait for the hub to process the reset
        if not on_hub(hub, lambda: order_id in hub.hub.orders.observers):
            break
        time.sleep(0.1)
    assert order_id not in on_hub(hub, lambda: hub.hub.orders.observers)
    assert on_hub(hub, lambda: hub.hub.orders.observation_count) == 0


__all__ += ["GENEROUS"]


def test_notifications_do_not_spend_the_observers_address_budget(db: Database) -> None:
    """An address at its request limit still gets every notification it registered for."""
    running = start_hub(db, source_rate=Rate(per_second=0.001, burst=2))
    coap = CoapClient(running.uri)
    try:
        devices, order_id = _placed_order(db, coap)  # the press spends one, the GET the other

        async def observe(context: Any) -> list[str]:
            pending = context.request(
                Message(code=GET, uri=f"{coap.base}/orders/{order_id}", observe=0)
            )
            statuses = [cbor2.loads((await pending.response).payload)["status"]]
            loop = asyncio.get_running_loop()
            for change in (mark_shipped, mark_delivered):
                await loop.run_in_executor(
                    None, lambda change=change: change(db, order_id, devices.world.store_id)
                )

                async def until(status: str) -> None:
                    async for note in pending.observation:
                        statuses.append(cbor2.loads(note.payload)["status"])
                        if statuses[-1] == status:
                            return

                await asyncio.wait_for(until(change.__name__.removeprefix("mark_")), 15)
            pending.observation.cancel()
            return statuses

        statuses = coap.run(observe)
        refused = coap.request(GET, f"/orders/{order_id}")
    finally:
        coap.close()
        stop_hub(running)
    assert statuses[0] == "placed" and statuses[-1] == "delivered"
    assert refused.code == Code.TOO_MANY_REQUESTS  # the budget really was spent
