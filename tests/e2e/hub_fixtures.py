"""Fixtures for the CoAP hub: a real hub on a free UDP port, a CoAP client, device tokens."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import cbor2
import pytest
from aiocoap import Context, Message
from aiocoap.numbers.codes import Code
from sqlalchemy import select

from auth.model import OAuthClient
from auth.principal import DEVICE_SCOPES
from auth.tokens import issue_token
from device_hub.limits import Rate
from device_hub.server import Hub, HubConfig
from orders.services.devices import LinkRules, link_device, register_device
from orders.store.db import Database
from orders.store.model import DeviceModel, Shopper, Store
from tests.factories import World, build_world

T = TypeVar("T")
GENEROUS = Rate(per_second=10_000, burst=10_000)


class LoopThread:
    """An asyncio loop in a daemon thread; `call(coro)` runs a coroutine there and waits."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class RunningHub:
    """A hub serving on 127.0.0.1:`port` in its own loop thread."""

    hub: Hub
    runner: LoopThread

    @property
    def port(self) -> int:
        """The UDP port it listens on."""
        return self.hub.port

    @property
    def uri(self) -> str:
        """Its base CoAP URI."""
        return f"coap://127.0.0.1:{self.port}"


def start_hub(db: Database, **config: Any) -> RunningHub:
    """Start a hub on a free port (generous limits unless given) and wait until it serves."""
    settings = HubConfig(
        host="127.0.0.1",
        port=0,
        mdns=False,
        device_rate=GENEROUS,
        source_rate=GENEROUS,
        poll_interval=0.1,
    )
    runner = LoopThread("hub")

    async def start() -> Hub:
        hub = Hub(db, replace(settings, **config))
        await hub.start()
        return hub

    return RunningHub(runner.call(start()), runner)


def stop_hub(running: RunningHub) -> None:
    """Stop the hub and its loop."""
    running.runner.call(running.hub.stop())
    running.runner.close()


@pytest.fixture
def hub(db: Database) -> Iterator[RunningHub]:
    """A running hub over the test database (each backend in turn)."""
    running = start_hub(db)
    try:
        yield running
    finally:
        stop_hub(running)


@dataclass(frozen=True)
class Reply:
    """A CoAP response, decoded."""

    code: Code
    payload: bytes
    content_format: int | None
    max_age: int | None

    @property
    def body(self) -> Any:
        """The payload as CBOR or JSON, per its content format."""
        if self.content_format == 50:
            return json.loads(self.payload)
        return cbor2.loads(self.payload)


class CoapClient:
    """A blocking CoAP client for tests (aiocoap in its own loop thread)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.runner = LoopThread("coap-client")
        self.context: Context = self.runner.call(Context.create_client_context())

    def request(
        self,
        code: Code,
        path: str,
        payload: bytes = b"",
        content_format: int | None = None,
        timeout: float = 30,
    ) -> Reply:
        """Send one request and wait for its answer."""
        message = Message(code=code, uri=self.base + path, payload=payload)
        if content_format is not None:
            message.opt.content_format = content_format

        async def send() -> Reply:
            response = await self.context.request(message).response
            return Reply(
                response.code,
                response.payload,
                response.opt.content_format,
                response.opt.max_age,
            )

        return self.runner.call(send(), timeout)

    def post(self, path: str, body: Any, *, json_format: bool = False) -> Reply:
        """POST `body` as CBOR (or JSON)."""
        if json_format:
            return self.request(Code.POST, path, json.dumps(body).encode(), 50)
        return self.request(Code.POST, path, cbor2.dumps(body), 60)

    def run(self, make: Callable[[Context], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
        """Run a coroutine using the client context (for Observe)."""
        return self.runner.call(make(self.context), timeout)

    def close(self) -> None:
        """Shut the client down."""
        self.runner.call(self.context.shutdown())
        self.runner.close()


@pytest.fixture
def client(hub: RunningHub) -> Iterator[CoapClient]:
    """A CoAP client pointed at the running hub."""
    coap = CoapClient(hub.uri)
    try:
        yield coap
    finally:
        coap.close()


@dataclass(frozen=True)
class Devices:
    """The test world plus a linked appliance, and a device access token for each."""

    world: World
    button_token: str
    appliance_id: int
    appliance_token: str


def device_token(db: Database, world: World, device_id: int, link_id: int) -> str:
    """A fresh device access token for a linked device."""
    with db.write() as session:
        issued = issue_token(
            session,
            client_id=world.model_client_id,
            kind="device",
            scope=DEVICE_SCOPES,
            shopper_id=world.shopper_id,
            store_id=world.store_id,
            device_id=device_id,
            link_id=link_id,
        )
    return issued.access_token


def build_devices(
    db: Database,
    *,
    rules: LinkRules | None = None,
    appliance_rules: LinkRules | None = None,
    **world: Any,
) -> Devices:
    """A world with a linked button and a linked coffee machine (slot `pods`, 50 count)."""
    built = build_world(db, rules=rules, **world)
    with db.write() as session:
        store = session.get(Store, built.store_id)
        shopper = session.get(Shopper, built.shopper_id)
        assert store is not None and shopper is not None
        model = session.scalars(
            select(DeviceModel).where(DeviceModel.client_id == built.appliance_client_id)
        ).one()
        for client_id in (built.model_client_id, built.appliance_client_id):
            session.add(
                OAuthClient(
                    client_id=client_id,
                    name="Device",
                    kind="device_model",
                    store_id=built.store_id,
                    scope=DEVICE_SCOPES,
                )
            )
        device = register_device(session, model, "CM-1")
        link = link_device(session, device, shopper, appliance_rules or LinkRules(reorder_point=10))
        appliance_id, appliance_link = device.id, link.id
    return Devices(
        built,
        device_token(db, built, built.device_id, built.link_id),
        appliance_id,
        device_token(db, built, appliance_id, appliance_link),
    )


__all__ = [
    "CoapClient",
    "Devices",
    "Reply",
    "RunningHub",
    "build_devices",
    "client",
    "hub",
    "start_hub",
    "stop_hub",
]
