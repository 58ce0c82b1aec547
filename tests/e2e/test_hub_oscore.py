"""OSCORE devices against a real hub, spoken by the tests' own RFC 8613 client (oscore_peer).

The client shares no code with aiocoap: it keys itself from the token response's `cnf` and the
/authz-info exchange (RFC 9203), then presses, observes, and is refused on a wrong key, on a
replay (in this hub or another one on the same database) and after its link ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest
from aiocoap.numbers.codes import Code
from sqlalchemy import select

from auth.device_flow import decide_device, unlink_device
from auth.model import OAuthClient
from auth.principal import DEVICE_SCOPES
from auth.tokens import IssuedToken, issue_token
from orders.services.devices import LinkRules
from orders.services.lifecycle import mark_shipped
from orders.store.db import Database
from orders.store.model import DeviceLink, Order
from tests import oscore_peer as peer
from tests.device_link_helpers import forget_polls, shopper_account
from tests.e2e.hub_fixtures import CoapClient, RunningHub, hub, start_hub, stop_hub
from tests.factories import World, build_world, count, db_snapshot

__all__ = ["hub"]  # fixture used by name
CBOR_FORMAT = (peer.CONTENT_FORMAT, bytes([60]))
UNAUTHORIZED, BAD_REQUEST = 0x81, 0x80


@dataclass
class Device:
    """A linked OSCORE button: its world, token response and the keys it derived."""

    world: World
    issued: IssuedToken
    keys: peer.Keys
    client: peer.Peer


def _issue(db: Database, world: World) -> IssuedToken:
    with db.write() as session:
        return issue_token(
            session,
            client_id=world.model_client_id,
            kind="device",
            scope=DEVICE_SCOPES,
            shopper_id=world.shopper_id,
            store_id=world.store_id,
            device_id=world.device_id,
            link_id=world.link_id,
            oscore=True,
        )


def authz_exchange(
    address: tuple[str, int], issued: IssuedToken, client_id: bytes
) -> tuple[bytes, bytes]:
    """RFC 9203 §4.1 and §4.3: post the token with N1; the Master Salt and the hub's id."""
    assert issued.osc is not None
    nonce1 = os.urandom(8)
    body = cbor2.dumps({1: issued.access_token, 40: nonce1, 43: client_id})
    token = os.urandom(4)
    options = [*peer.path_options("authz-info"), (peer.CONTENT_FORMAT, bytes([19]))]
    sock = peer.Peer(address, peer.Keys(b"", b"", b"", b"", b""))
    try:
        sock.sock.sendto(peer.plain_request(peer.POST, options, body, token=token), address)
        answer = sock.receive(token)
    finally:
        sock.close()
    assert peer.response_code(answer) == peer.CREATED, answer
    reply = cbor2.loads(peer.response_payload(answer))
    nonce2, hub_id = reply[42], reply[44]
    # Master Salt = salt | N1 | N2, each a CBOR byte string (RFC 9203 §4.3).
    salt = cbor2.dumps(issued.osc.salt) + cbor2.dumps(nonce1) + cbor2.dumps(nonce2)
    return salt, hub_id


def authz_info(address: tuple[str, int], issued: IssuedToken, client_id: bytes) -> peer.Keys:
    """The /authz-info exchange, then the client's derived context."""
    assert issued.osc is not None
    salt, hub_id = authz_exchange(address, issued, client_id)
    return peer.Keys.derive(issued.osc.ms, salt, sender_id=hub_id, recipient_id=client_id)


@pytest.fixture
def device(db: Database, hub: RunningHub) -> Iterator[Device]:
    """A linked OSCORE button that has been through /authz-info."""
    world = build_world(db, security="oscore")
    issued = _issue(db, world)
    address = ("127.0.0.1", hub.port)
    keys = authz_info(address, issued, b"\x01")
    client = peer.Peer(address, keys)
    try:
        yield Device(world, issued, keys, client)
    finally:
        client.close()


def press(device: Device, seq: int) -> tuple[peer.Protected, bytes]:
    """A protected POST /press {seq}; the request as sent and the raw answer."""
    sent = peer.protect_request(
        device.keys,
        peer.POST,
        [*peer.path_options("press"), CBOR_FORMAT],
        cbor2.dumps({"seq": seq}),
    )
    return sent, device.client.send(sent)


def resend(client: peer.Peer, sent: peer.Protected) -> bytes:
    """The same protected bytes under a new message id and token: a replay, not a retransmission."""
    token = os.urandom(len(sent.token))
    datagram = bytearray(sent.datagram)
    datagram[2:4] = os.urandom(2)
    datagram[4 : 4 + len(token)] = token
    client.sock.sendto(bytes(datagram), client.address)
    return client.receive(token)


def test_a_protected_press_places_an_order_and_the_answer_is_protected(device: Device) -> None:
    """The press is decrypted, identified by its context and answered under the same context."""
    sent, raw = press(device, 1)
    answer = peer.unprotect_response(device.keys, sent, raw)
    assert answer.outer_code == peer.CHANGED  # RFC 8613 §4.2: the outer code of a response
    assert answer.code == peer.CREATED
    body = cbor2.loads(answer.payload)
    assert body["result"] == "placed" and body["order"]["sku"] == "PODS"


def test_a_replayed_press_is_refused_and_orders_nothing(db: Database, device: Device) -> None:
    """The same protected bytes again (new message id): 4.01, no second order."""
    sent, raw = press(device, 1)
    assert peer.unprotect_response(device.keys, sent, raw).code == peer.CREATED
    before = db_snapshot(db)
    replayed = resend(device.client, sent)
    assert peer.response_code(replayed) == UNAUTHORIZED
    assert db_snapshot(db) == before


def test_a_wrong_key_is_refused_and_changes_nothing(db: Database, device: Device) -> None:
    """A request under another master secret fails the AEAD: 4.00, nothing written."""
    wrong = peer.Keys.derive(
        os.urandom(16), b"salt", device.keys.sender_id, device.keys.recipient_id
    )
    intruder = peer.Peer(device.client.address, wrong)
    before = db_snapshot(db)
    try:
        sent = peer.protect_request(
            wrong, peer.POST, [*peer.path_options("press"), CBOR_FORMAT], cbor2.dumps({"seq": 1})
        )
        raw = intruder.send(sent)
    finally:
        intruder.close()
    assert peer.response_code(raw) == BAD_REQUEST
    assert db_snapshot(db) == before


def test_an_unprotected_request_from_an_oscore_device_is_refused(
    db: Database, device: Device
) -> None:
    """Its token is proof-of-possession: in the payload as a bearer token it gets 4.01."""
    token = os.urandom(4)
    body = cbor2.dumps({"at": device.issued.access_token, "seq": 1})
    options = [*peer.path_options("press"), CBOR_FORMAT]
    before = count(db, Order)
    device.client.sock.sendto(
        peer.plain_request(peer.POST, options, body, token=token), device.client.address
    )
    raw = device.client.receive(token)
    assert peer.response_code(raw) == UNAUTHORIZED
    assert cbor2.loads(peer.response_payload(raw))["error"] == "invalid_token"
    assert count(db, Order) == before


def test_observing_an_order_under_oscore_hears_it_ship(db: Database, device: Device) -> None:
    """FETCH+Observe inside OSCORE: the first answer, then a notification with its own
    Partial IV when the merchant ships; an unprotected GET of the same order gets 4.01."""
    sent, raw = press(device, 1)
    order_id = cbor2.loads(peer.unprotect_response(device.keys, sent, raw).payload)["order"]["id"]
    observe = peer.protect_request(
        device.keys, peer.GET, [*peer.path_options("orders", order_id)], observe=0
    )
    first = peer.unprotect_response(device.keys, observe, device.client.send(observe))
    assert first.code == peer.CONTENT and first.observe is not None
    assert cbor2.loads(first.payload)["status"] == "placed"

    mark_shipped(db, order_id, device.world.store_id, "TRACK-1")
    heard = []
    while "shipped" not in heard and len(heard) < 5:  # a retransmitted first answer may come too
        news = peer.unprotect_response(device.keys, observe, device.client.receive(observe.token))
        heard.append(cbor2.loads(news.payload)["status"])
    assert heard[-1] == "shipped" and news.observe is not None

    token = os.urandom(4)
    device.client.sock.sendto(
        peer.plain_request(peer.GET, peer.path_options("orders", order_id), token=token),
        device.client.address,
    )
    assert peer.response_code(device.client.receive(token)) == UNAUTHORIZED


def test_no_request_replayed_to_a_second_hub_executes(db: Database, device: Device) -> None:
    """Every protected request of a run, replayed to another hub on the same database
    (its own contexts in memory), is refused there: the strike-out is in the database."""
    sent = []
    for seq in range(1, 6):
        request, raw = press(device, seq)
        assert peer.unprotect_response(device.keys, request, raw).code == peer.CREATED
        sent.append(request)
    second = start_hub(db)
    other = peer.Peer(("127.0.0.1", second.port), device.keys)
    try:
        before = db_snapshot(db)
        for request in sent:
            assert peer.response_code(resend(other, request)) == UNAUTHORIZED
        assert db_snapshot(db) == before
        # The same device goes on through the second hub with its next sequence numbers.
        fresh = peer.protect_request(
            device.keys, peer.POST, [*peer.path_options("press"), CBOR_FORMAT],
            cbor2.dumps({"seq": 6}),
        )  # fmt: skip
        assert peer.unprotect_response(device.keys, fresh, other.send(fresh)).code == peer.CREATED
    finally:
        other.close()
        stop_hub(second)


def test_unlinking_ends_the_context_in_every_hub(db: Database, device: Device) -> None:
    """After the shopper unlinks, both hubs refuse the device's next protected request."""
    second = start_hub(db)
    other = peer.Peer(("127.0.0.1", second.port), device.keys)
    try:
        request, raw = press(device, 1)
        assert peer.unprotect_response(device.keys, request, raw).code == peer.CREATED
        with db.write() as session:
            link = session.scalars(
                select(DeviceLink).where(DeviceLink.id == device.world.link_id)
            ).one()
            unlink_device(session, link)
        for client in (device.client, other):
            late = peer.protect_request(
                device.keys, peer.POST, [*peer.path_options("press"), CBOR_FORMAT],
                cbor2.dumps({"seq": device.keys.seq + 1}),
            )  # fmt: skip
            assert peer.response_code(client.send(late)) == UNAUTHORIZED
    finally:
        other.close()
        stop_hub(second)


def test_a_rebooted_device_reposts_its_token_and_gets_a_fresh_context(
    db: Database, hub: RunningHub, device: Device
) -> None:
    """New N1, same token: a new context starting at sequence number 0; the old one is gone."""
    first, raw = press(device, 1)
    assert peer.unprotect_response(device.keys, first, raw).code == peer.CREATED
    old = device.keys
    keys = authz_info(("127.0.0.1", hub.port), device.issued, b"\x01")
    assert keys.sender_id != old.sender_id and keys.seq == 0
    again = peer.Peer(device.client.address, keys)
    try:
        sent = peer.protect_request(
            keys, peer.POST, [*peer.path_options("press"), CBOR_FORMAT], cbor2.dumps({"seq": 2})
        )
        assert peer.unprotect_response(keys, sent, again.send(sent)).code == peer.CREATED
        stale = peer.protect_request(
            old, peer.POST, [*peer.path_options("press"), CBOR_FORMAT], cbor2.dumps({"seq": 3})
        )
        assert peer.response_code(device.client.send(stale)) == UNAUTHORIZED
    finally:
        again.close()


def test_authz_info_refuses_a_bearer_token_and_a_bad_nonce(db: Database, hub: RunningHub) -> None:
    """A bearer model's token keys nothing (4.01); a missing nonce is a bad request (4.00)."""
    world = build_world(db)
    with db.write() as session:
        bearer = issue_token(
            session, client_id=world.model_client_id, kind="device", scope=DEVICE_SCOPES,
            shopper_id=world.shopper_id, store_id=world.store_id, device_id=world.device_id,
            link_id=world.link_id,
        )  # fmt: skip
    address = ("127.0.0.1", hub.port)
    client = peer.Peer(address, peer.Keys(b"", b"", b"", b"", b""))
    options = [*peer.path_options("authz-info"), (peer.CONTENT_FORMAT, bytes([19]))]
    try:
        for body, code in [
            ({1: bearer.access_token, 40: os.urandom(8), 43: b"\x01"}, UNAUTHORIZED),
            ({1: bearer.access_token, 43: b"\x01"}, BAD_REQUEST),
        ]:
            token = os.urandom(4)
            client.sock.sendto(
                peer.plain_request(peer.POST, options, cbor2.dumps(body), token=token), address
            )
            assert peer.response_code(client.receive(token)) == code
    finally:
        client.close()
    with db.read() as session:
        assert session.scalar(select(Order.id)) is None


def test_a_protected_cancel_calls_off_the_devices_own_order(device: Device) -> None:
    """POST /orders/{id}/cancel under OSCORE, with no `at`: the order is cancelled."""
    sent, raw = press(device, 1)
    order_id = cbor2.loads(peer.unprotect_response(device.keys, sent, raw).payload)["order"]["id"]
    cancel = peer.protect_request(
        device.keys,
        peer.POST,
        [*peer.path_options("orders", order_id, "cancel"), CBOR_FORMAT],
        cbor2.dumps({}),
    )
    answer = peer.unprotect_response(device.keys, cancel, device.client.send(cancel))
    assert answer.code == peer.CHANGED
    assert cbor2.loads(answer.payload)["order"]["status"] == "cancelled"


def test_the_device_flow_over_coap_gives_an_oscore_model_its_input_material(
    db: Database, hub: RunningHub
) -> None:
    """The /link/token answer carries `cnf: {osc: {id, ms, salt}}` as CBOR byte strings."""
    world = build_world(db, security="oscore")
    with db.write() as session:
        session.add(
            OAuthClient(
                client_id=world.model_client_id, name="Button", kind="device_model",
                store_id=world.store_id, scope=DEVICE_SCOPES,
            )
        )  # fmt: skip
    coap = CoapClient(hub.uri)
    try:
        started = coap.post(
            "/link", {"client_id": world.model_client_id, "serial": "OSC-9", "pad": "." * 100}
        )
        assert started.code == Code.CREATED, started.body
        account_id = shopper_account(db, "osc@shop.test")
        decide_device(db, user_code=started.body["user_code"], account_id=account_id,
                      approve=True, rules=LinkRules(product_sku="PODS"))  # fmt: skip
        forget_polls(db)
        poll = {"client_id": world.model_client_id, "device_code": started.body["device_code"]}
        issued = coap.post("/link/token", poll)
    finally:
        coap.close()
    assert issued.code == Code.CONTENT, issued.body
    osc = issued.body["cnf"]["osc"]
    assert {len(osc["ms"]), len(osc["salt"]), len(osc["id"])} <= {8, 16}
    assert all(isinstance(osc[name], bytes) for name in ("id", "ms", "salt"))


def _libcoap_with_oscore() -> str | None:
    """A libcoap coap-client built with OSCORE (4.3.2 or later), if one is installed."""
    for name in ("coap-client", "coap-client-openssl", "coap-client-gnutls", "coap-client-notls"):
        binary = shutil.which(name)
        if binary is None:
            continue
        usage = subprocess.run([binary, "-h", "x"], capture_output=True, text=True, check=False)
        if "-E " in usage.stdout + usage.stderr:
            return binary
    return None


@pytest.mark.skipif(_libcoap_with_oscore() is None, reason="no libcoap with OSCORE (needs 4.3.2+)")
def test_libcoap_presses_under_oscore(db: Database, hub: RunningHub, tmp_path: Path) -> None:
    """libcoap's own OSCORE, keyed from the same /authz-info exchange, places an order."""
    binary = _libcoap_with_oscore()
    assert binary is not None
    world = build_world(db, security="oscore")
    issued = _issue(db, world)
    assert issued.osc is not None
    salt, hub_id = authz_exchange(("127.0.0.1", hub.port), issued, b"\x01")
    conf = tmp_path / "oscore.conf"
    conf.write_text(
        f'master_secret,hex,"{issued.osc.ms.hex()}"\n'
        f'master_salt,hex,"{salt.hex()}"\n'
        f'sender_id,hex,"{hub_id.hex()}"\n'
        'recipient_id,hex,"01"\n'
        "replay_window,integer,32\n"
        "aead_alg,integer,10\n"
        "hkdf_alg,integer,-10\n"
    )
    result = subprocess.run(
        [binary, "-m", "post", "-E", str(conf), "-t", "50", "-e", '{"seq":1}',
         f"coap://127.0.0.1:{hub.port}/press"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert '"placed"' in result.stdout, result.stdout + result.stderr
    assert count(db, Order) == 1
