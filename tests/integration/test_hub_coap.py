"""The hub over a real UDP socket: every CONTRACT.md CoAP resource, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib

import cbor2
import pytest
from aiocoap import GET, Message
from aiocoap.numbers.codes import Code
from sqlalchemy import select, update

from auth.accounts import create_account
from auth.device_flow import decide_device
from auth.model import DeviceCode
from device_hub.limits import Rate
from orders.services.addresses import add_address
from orders.services.devices import LinkRules
from orders.services.lifecycle import mark_shipped
from orders.store.db import Database, make_engine
from orders.store.model import Order, SupplyReading
from tests.conftest import Backend
from tests.e2e.hub_fixtures import (
    CoapClient,
    RunningHub,
    build_devices,
    client,
    hub,
    start_hub,
    stop_hub,
)
from tests.factories import HOME, count, db_snapshot

__all__ = ["client", "hub"]  # fixtures used by name
PAD = "." * 100  # /link requests are padded to a third of the answer (README)


def test_well_known_core_lists_every_resource_with_its_rt(client: CoapClient) -> None:
    """/.well-known/core is RFC 6690 link-format naming each resource's rt."""
    reply = client.request(GET, "/.well-known/core")
    assert reply.code == Code.CONTENT and reply.content_format == 40
    text = reply.payload.decode()
    for path, rt in [
        ("/link", "restock.link"),
        ("/link/token", "restock.link.token"),
        ("/press", "restock.press"),
        ("/telemetry", "restock.telemetry"),
        ("/orders", "restock.order"),
    ]:
        assert f"<{path}>;" in text and f'rt="{rt}"' in text


def test_device_flow_over_coap_links_and_issues_a_token_once(
    db: Database, client: CoapClient
) -> None:
    """/link then /link/token: pending, then tokens after approval, then invalid_grant."""
    devices = build_devices(db)
    started = client.post(
        "/link", {"client_id": devices.world.model_client_id, "serial": "B-9", "pad": PAD}
    )
    assert started.code == Code.CREATED
    assert set(started.body) >= {"device_code", "user_code", "verification_uri", "interval"}
    poll = {"client_id": devices.world.model_client_id, "device_code": started.body["device_code"]}
    pending = client.post("/link/token", poll)
    assert pending.code == Code.BAD_REQUEST and pending.body == {"error": "authorization_pending"}
    with db.write() as session:
        account = create_account(
            session, email="bo@shop.test", password="x" * 16, shopper_name="Bo"
        )
        add_address(session, account.shopper_id, HOME)
        account_id = account.id
    decide_device(db, user_code=started.body["user_code"], account_id=account_id, approve=True)
    with db.write() as session:  # poll politely: forget the last poll instead of waiting 5 s
        session.execute(update(DeviceCode).values(last_polled_at=None))
    issued = client.post("/link/token", poll)
    assert issued.code == Code.CONTENT, issued.body
    assert set(issued.body) >= {"access_token", "refresh_token", "expires_in", "device_id"}
    again = client.post("/link/token", poll)
    assert again.body == {"error": "invalid_grant"}
    pressed = client.post("/press", {"at": issued.body["access_token"], "seq": 1})
    assert pressed.code == Code.CREATED and pressed.body["result"] == "placed"


def test_link_with_unknown_client_is_invalid_client(client: CoapClient, db: Database) -> None:
    """An unknown client id gets the RFC word, and nothing is stored."""
    build_devices(db)
    before = db_snapshot(db)
    reply = client.post("/link", {"client_id": "nobody", "serial": "X", "pad": PAD})
    assert reply.code == Code.BAD_REQUEST and reply.body == {"error": "invalid_client"}
    missing = client.post("/link", {"serial": "X", "pad": PAD})
    assert missing.body == {"error": "invalid_request"}
    assert db_snapshot(db) == before


def test_press_places_then_in_progress_then_duplicate(db: Database, client: CoapClient) -> None:
    """One order per press; a new seq while open is in_progress; the same seq is duplicate."""
    devices = build_devices(db)
    first = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert first.code == Code.CREATED and first.body["result"] == "placed"
    assert set(first.body["order"]) == {
        "id", "status", "sku", "quantity", "total_minor", "currency", "cancel_until",
    }  # fmt: skip
    second = client.post("/press", {"at": devices.button_token, "seq": 2})
    assert second.body["result"] == "in_progress"
    assert second.body["order"]["id"] == first.body["order"]["id"]
    repeat = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert repeat.body["result"] == "duplicate"
    assert count(db, Order) == 1


def test_press_in_json_is_answered_in_json(db: Database, client: CoapClient) -> None:
    """Content-format 50 in, 50 out."""
    devices = build_devices(db)
    reply = client.post("/press", {"at": devices.button_token, "seq": 7}, json_format=True)
    assert reply.code == Code.CREATED and reply.content_format == 50
    assert reply.body["result"] == "placed"


def test_press_with_a_new_boot_is_a_new_press(db: Database, client: CoapClient) -> None:
    """After a battery change (new boot) seq 1 is not a duplicate."""
    devices = build_devices(db, cancel_window_minutes=0)
    first = client.post("/press", {"at": devices.button_token, "seq": 1, "boot": "a"})
    with db.write() as session:
        order = session.get(Order, first.body["order"]["id"])
        assert order is not None
        order.status = "delivered"
    after = client.post("/press", {"at": devices.button_token, "seq": 1, "boot": "b"})
    assert after.body["result"] == "placed"
    assert after.body["order"]["id"] != first.body["order"]["id"]


def test_press_needing_approval_says_so(db: Database, client: CoapClient) -> None:
    """A link with approval on answers needs_approval."""
    devices = build_devices(db, rules=LinkRules(product_sku="PODS", approval_required=True))
    reply = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert reply.body["result"] == "needs_approval"
    assert reply.body["order"]["status"] == "pending_approval"


@pytest.mark.parametrize(
    ("rules", "stock", "reason"),
    [
        (LinkRules(product_sku="PODS", paused=True), 100, "paused"),
        (LinkRules(product_sku="PODS", per_order_cap_minor=100), 100, "spending_cap"),
        (LinkRules(product_sku="PODS"), 0, "out_of_stock"),
    ],
)
def test_refused_press_is_403_with_reason_and_changes_nothing(
    db: Database, client: CoapClient, rules: LinkRules, stock: int, reason: str
) -> None:
    """4.03 {error: refused, reason}; the database is as before."""
    devices = build_devices(db, rules=rules, stock=stock)
    before = db_snapshot(db)
    reply = client.post("/press", {"at": devices.button_token, "seq": 1})
    assert reply.code == Code.FORBIDDEN
    assert reply.body == {"error": "refused", "reason": reason}
    assert db_snapshot(db) == before


@pytest.mark.parametrize("token", ["x" * 43, 12, None, ""])
def test_unknown_token_is_401(db: Database, client: CoapClient, token: object) -> None:
    """A wrong, missing or ill-typed token is 4.01 invalid_token, and nothing changes."""
    build_devices(db)
    before = db_snapshot(db)
    reply = client.post("/press", {"at": token, "seq": 1})
    assert reply.code == Code.UNAUTHORIZED and reply.body["error"] == "invalid_token"
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("payload", "fmt", "code"),
    [
        (b"\xff\xfe", 60, Code.BAD_REQUEST),
        (b"{not json", 50, Code.BAD_REQUEST),
        (b'{"at": NaN, "seq": 1}', 50, Code.BAD_REQUEST),
        (cbor2.dumps([1, 2]), 60, Code.BAD_REQUEST),
        (b"", 60, Code.BAD_REQUEST),
        (cbor2.dumps({"at": "x"}), 0, Code.UNSUPPORTED_CONTENT_FORMAT),
        (cbor2.dumps({"at": "a" * 2000}), 60, Code.REQUEST_ENTITY_TOO_LARGE),
    ],
)
def test_bad_press_payloads_are_4xx_and_change_nothing(
    db: Database, client: CoapClient, payload: bytes, fmt: int, code: Code
) -> None:
    """Malformed, wrong-typed, unknown-format and oversize payloads: 4.xx, DB unchanged."""
    build_devices(db)
    before = db_snapshot(db)
    reply = client.request(Code.POST, "/press", payload, fmt)
    assert reply.code == code
    assert reply.body["error"] == "bad_payload"
    assert db_snapshot(db) == before


@pytest.mark.parametrize("seq", [-1, "1", 1.5, True, None, 2**64])
def test_press_with_a_bad_seq_is_400(db: Database, client: CoapClient, seq: object) -> None:
    """seq must be a non-negative integer."""
    devices = build_devices(db)
    before = db_snapshot(db)
    reply = client.post("/press", {"at": devices.button_token, "seq": seq})
    assert reply.code == Code.BAD_REQUEST and reply.body["error"] == "bad_seq"
    assert db_snapshot(db) == before


def test_telemetry_below_reorder_point_orders_once(db: Database, client: CoapClient) -> None:
    """A falling level orders at the reorder point, then answers none while it is open."""
    devices = build_devices(db)
    high = client.post("/telemetry", {"at": devices.appliance_token, "senml": [{0: "pods", 2: 30}]})
    assert high.code == Code.CHANGED and high.body == {"accepted": 1, "action": "none"}
    low = client.post(
        "/telemetry",
        {"at": devices.appliance_token, "senml": [{"n": "pods", "u": "count", "v": 8}]},
        json_format=True,
    )
    assert low.code == Code.CHANGED and low.body["action"] == "ordered"
    assert low.body["order"]["sku"] == "PODS"
    lower = client.post("/telemetry", {"at": devices.appliance_token, "senml": [{0: "pods", 2: 4}]})
    assert lower.body == {"accepted": 1, "action": "none"}
    assert count(db, SupplyReading) == 3
    with db.read() as session:
        channels = list(session.scalars(select(Order.channel)))
    assert channels == ["appliance"]


def test_telemetry_with_a_button_token_lacking_slots_is_400(
    db: Database, client: CoapClient
) -> None:
    """The button has no slots: any name is an unknown slot, and nothing is stored."""
    devices = build_devices(db)
    before = db_snapshot(db)
    reply = client.post("/telemetry", {"at": devices.button_token, "senml": [{0: "pods", 2: 1}]})
    assert reply.code == Code.BAD_REQUEST and reply.body["error"] == "unknown_slot"
    assert db_snapshot(db) == before


def test_order_status_get_and_unknown_order(db: Database, client: CoapClient) -> None:
    """GET /orders/{id} is 2.05 {id, status, updated}; an unknown id is 4.04."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    reply = client.request(GET, f"/orders/{placed['id']}")
    assert reply.code == Code.CONTENT
    assert reply.body["id"] == placed["id"] and reply.body["status"] == "placed"
    assert reply.body["updated"].endswith("Z")
    assert client.request(GET, "/orders/nope").code == Code.NOT_FOUND
    assert client.request(GET, "/orders/a/b").code == Code.NOT_FOUND


def test_observe_notifies_a_change_made_by_another_connection(
    db: Database, backend: Backend, client: CoapClient
) -> None:
    """The merchant ships from another Database (another pool, as another process would)."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    kwargs = {}
    if backend.schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={backend.schema}"}
    other = Database(make_engine(backend.url, **kwargs))

    async def observe(context: object) -> list[str]:
        request = Message(code=GET, uri=client.base + f"/orders/{placed['id']}", observe=0)
        pending = context.request(request)  # type: ignore[attr-defined]
        first = await pending.response
        statuses = [cbor2.loads(first.payload)["status"]]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, lambda: mark_shipped(other, placed["id"], devices.world.store_id)
        )

        async def until_shipped() -> None:
            # Observe may repeat a state (the order's own creation event arriving late);
            # what matters is that the change arrives.
            async for notification in pending.observation:
                statuses.append(cbor2.loads(notification.payload)["status"])
                if statuses[-1] != "placed":
                    return

        await asyncio.wait_for(until_shipped(), 15)
        pending.observation.cancel()
        return statuses

    try:
        statuses = client.run(observe, timeout=20)
    finally:
        other.dispose()
    assert statuses[0] == "placed" and statuses[-1] == "shipped"
    assert set(statuses) == {"placed", "shipped"}


@pytest.mark.postgres
def test_a_change_is_notified_once_though_listen_and_the_outbox_both_see_it(
    postgresql_backend: Backend,
) -> None:
    """LISTEN notifies at once; the outbox reads that follow must not notify it again."""
    db = Database(postgresql_backend.engine)
    running = start_hub(db, listen_poll_interval=0.2)
    client = CoapClient(running.uri)
    other = Database(
        make_engine(
            postgresql_backend.url,
            connect_args={"options": f"-csearch_path={postgresql_backend.schema}"},
        )
    )
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]

    async def observe(context: object) -> list[str]:
        request = Message(code=GET, uri=client.base + f"/orders/{placed['id']}", observe=0)
        pending = context.request(request)  # type: ignore[attr-defined]
        statuses = [cbor2.loads((await pending.response).payload)["status"]]
        await asyncio.sleep(0.5)  # the creation event's outbox reads are behind us
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, lambda: mark_shipped(other, placed["id"], devices.world.store_id)
        )

        async def collect() -> None:
            async for notification in pending.observation:
                statuses.append(cbor2.loads(notification.payload)["status"])

        # Several outbox reads (every 0.2 s) pass while we listen.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collect(), 1.5)
        pending.observation.cancel()
        return statuses

    try:
        statuses = client.run(observe, timeout=20)
    finally:
        client.close()
        other.dispose()
        stop_hub(running)
        postgresql_backend.clean()
    # A late notice of the creation may precede the change on a loaded machine; the change
    # itself (seen by LISTEN and by the outbox reads) must arrive exactly once.
    assert statuses[0] == "placed"
    assert statuses.count("shipped") == 1
    assert set(statuses[:-1]) == {"placed"} and statuses[-1] == "shipped"


def test_device_rate_limit_answers_429_with_max_age(db: Database) -> None:
    """Past its burst a device gets 4.29 and a Max-Age telling it when to come back."""
    running = start_hub(db, device_rate=Rate(per_second=0.1, burst=2))
    coap = CoapClient(running.uri)
    try:
        devices = build_devices(db)
        codes = [
            coap.post("/press", {"at": devices.button_token, "seq": seq}).code for seq in (1, 2)
        ]
        limited = coap.post("/press", {"at": devices.button_token, "seq": 3})
    finally:
        coap.close()
        stop_hub(running)
    assert codes == [Code.CREATED, Code.CREATED]
    assert limited.code == Code.TOO_MANY_REQUESTS
    assert limited.max_age is not None and 1 <= limited.max_age <= 10
    assert limited.body["error"] == "rate_limited"


def test_source_rate_limit_stops_a_flood_before_the_database(db: Database) -> None:
    """An address past its burst is refused before its payload is even read."""
    running = start_hub(db, source_rate=Rate(per_second=0.5, burst=3))
    coap = CoapClient(running.uri)
    try:
        replies = [coap.post("/link", {"client_id": "x", "serial": "y"}) for _ in range(5)]
    finally:
        coap.close()
        stop_hub(running)
    assert [r.code for r in replies[:3]] == [Code.BAD_REQUEST] * 3
    assert all(r.code == Code.TOO_MANY_REQUESTS and r.max_age for r in replies[3:])


def test_hub_answers_again_after_stop_and_start_on_the_same_db(db: Database) -> None:
    """Stopping releases the socket and the pool; a new hub serves the same devices."""
    devices = build_devices(db)
    for seq in (1, 2):
        running: RunningHub = start_hub(db)
        coap = CoapClient(running.uri)
        try:
            assert (
                coap.post("/press", {"at": devices.button_token, "seq": seq}).code == Code.CREATED
            )
        finally:
            coap.close()
            stop_hub(running)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/press", b'{"at": "\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800", "seq": 1}'),
        ("/press", b'{"at": "TOKEN", "seq": 1, "boot": "\\udfff"}'),
        ("/link", b'{"client_id": "\\ud800", "serial": "x", "pad": "' + PAD.encode() + b'"}'),
    ],
)
def test_lone_surrogates_in_json_are_400_not_500(
    db: Database, client: CoapClient, path: str, payload: bytes
) -> None:
    """JSON escapes can smuggle text no database can store: refused as a bad payload."""
    devices = build_devices(db)
    before = db_snapshot(db)
    reply = client.request(
        Code.POST, path, payload.replace(b"TOKEN", devices.button_token.encode()), 50
    )
    assert reply.code == Code.BAD_REQUEST and reply.body["error"] == "bad_payload"
    assert db_snapshot(db) == before
