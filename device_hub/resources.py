"""The CoAP resources (CONTRACT.md): each parses, calls one domain service, and answers."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource, PathCapable, Resource, Site, WKCResource
from aiocoap.util.linkformat import Link, LinkFormat

from auth.device_flow import DeviceFlowError, poll_device_token, start_device_authorization
from auth.principal import Principal
from device_hub.batching import PressBatcher
from device_hub.blockwise import BoundedBlock1Spool
from device_hub.codec import PayloadError, decode, encode, reply_format, request_format
from device_hub.compat_aiocoap import HubSite
from device_hub.errors import RateLimited, error_answer
from device_hub.identity import Identify
from device_hub.limits import RateLimiter
from orders.db import Database
from orders.errors import NotFound
from orders.lifecycle import get_order_status
from orders.presses import check_press
from orders.telemetry import Policy, record_telemetry

log = logging.getLogger("restock.hub")
T = TypeVar("T")

PRESS_MAX_PAYLOAD = 1024
MAX_PAYLOAD = 16 * 1024  # a full 256-record SenML pack fits with room to spare
MAX_OBSERVATIONS = 10_000
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
Body = dict[str, Any]
Answer = tuple[Code, Body]


@dataclass
class HubServices:
    """What every resource needs: the database, a thread pool, identity and limits."""

    db: Database
    executor: Executor
    identify: Identify
    source_limit: RateLimiter
    device_limit: RateLimiter
    public_url: str
    policy: Policy
    presses: PressBatcher

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (database calls) in the pool, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def as_device(self, body: Body, scope: str, work: Callable[[Principal], T]) -> T:
        """Identify the device, apply its rate limit, then do `work`: one trip to the pool."""

        def identified() -> T:
            return work(self._identify(body, scope))

        return await self.run(identified)

    def _identify(self, body: Body, scope: str) -> Principal:
        principal = self.identify(body, scope)
        assert principal.device_id is not None  # Identify guarantees a device
        wait = self.device_limit.take(principal.device_id)
        if wait:
            raise RateLimited(wait)
        return principal

    async def answer(
        self,
        request: Message,
        handle: Callable[[Body], Awaitable[Answer]],
        max_payload: int,
        assembled: bool = False,
    ) -> Message:
        """Parse, handle and render one request; every known error becomes a 4.xx."""
        fmt = reply_format(request)
        try:
            self.check_source(request)
            partial = request.opt.block1 is not None and not assembled
            if len(request.payload) > max_payload or partial:
                raise PayloadError(
                    f"payload over {max_payload} bytes", Code.REQUEST_ENTITY_TOO_LARGE
                )
            code, body = await handle(decode(request.payload, request_format(request)))
        except Exception as exc:
            return self.render_error(exc, fmt, max_payload)
        return encode(body, fmt, code)

    def check_source(self, request: Message) -> None:
        """Per-address limit, before any work is done for the request."""
        wait = self.source_limit.take(source_address(request))
        if wait:
            raise RateLimited(wait)

    def render_error(self, exc: Exception, fmt: Any, max_payload: int) -> Message:
        """The 4.xx for a known error; anything else is a bug and re-raised (aiocoap: 5.00)."""
        known = error_answer(exc)
        if known is None:
            raise exc
        code, body = known
        message = encode(body, fmt, code)
        if isinstance(exc, RateLimited):
            message.opt.max_age = exc.retry_after
        if code == Code.REQUEST_ENTITY_TOO_LARGE:
            message.opt.size1 = max_payload
        return message


def source_address(request: Message) -> str:
    """The request's source IP address (without port), the key of per-address limits."""
    sockaddr = getattr(request.remote, "sockaddr", None)
    if sockaddr:
        return str(sockaddr[0])
    return str(request.remote.hostinfo)


class _Post(Resource):
    max_payload = MAX_PAYLOAD
    blockwise = False  # Block1 uploads refused with 4.13: the payload must fit one datagram

    def __init__(self, hub: HubServices) -> None:
        super().__init__()
        self.hub = hub
        if self.blockwise:
            self._block1 = BoundedBlock1Spool(self.max_payload)

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return self.blockwise

    async def render_post(self, request: Message) -> Message:
        return await self.hub.answer(request, self.handle, self.max_payload, self.blockwise)

    async def handle(self, body: Body) -> Answer:
        raise NotImplementedError


def _text(body: Body, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise DeviceFlowError("invalid_request", f"{name} must be a string")
    return value


class LinkResource(_Post):
    """POST /link {client_id, serial}: start the device flow (RFC 8628 over CoAP)."""

    rt = "restock.link"
    ct = "60 50"

    async def handle(self, body: Body) -> Answer:
        client_id, serial = _text(body, "client_id"), _text(body, "serial")
        started = await self.hub.run(
            start_device_authorization,
            self.hub.db,
            client_id=client_id,
            public_url=self.hub.public_url,
            serial=serial,
        )
        return Code.CREATED, started.as_response()


class LinkTokenResource(_Post):
    """POST /link/token {client_id, device_code}: the device's poll."""

    rt = "restock.link.token"
    ct = "60 50"

    async def handle(self, body: Body) -> Answer:
        client_id, device_code = _text(body, "client_id"), _text(body, "device_code")
        issued = await self.hub.run(
            poll_device_token, self.hub.db, client_id=client_id, device_code=device_code
        )
        return Code.CONTENT, {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "device_id": issued.device_id,
        }


class PressResource(_Post):
    """POST /press {at, seq[, boot]}: at most one order per press."""

    rt = "restock.press"
    ct = "60 50"
    max_payload = PRESS_MAX_PAYLOAD

    async def handle(self, body: Body) -> Answer:
        seq, boot = body.get("seq"), body.get("boot", "")
        check_press(seq, boot)
        # The batch's writer thread identifies the device, limits it and presses, in one
        # transaction; the future fails with the refusal, if any.
        answer = await self.hub.presses.submit(body, seq, boot)  # type: ignore[arg-type]
        return Code.CREATED, {"result": answer.outcome, "order": answer.order.summary()}


class TelemetryResource(_Post):
    """POST /telemetry {at, senml}: store levels; the policy may reorder."""

    rt = "restock.telemetry"
    ct = "60 50"
    blockwise = True  # a 256-record pack is larger than one 1 KiB block

    async def handle(self, body: Body) -> Answer:
        def work(device: Principal) -> Body:
            assert device.device_id is not None
            result = record_telemetry(
                self.hub.db, device.device_id, body.get("senml"), policy=self.hub.policy
            )
            answer: Body = {"accepted": result.accepted, "action": result.action}
            if result.order is not None:
                answer["order"] = result.order.summary()
            if result.refused is not None:
                answer["reason"] = result.refused
            return answer

        return Code.CHANGED, await self.hub.as_device(body, "devices:telemetry", work)


class OrderStatusResource(ObservableResource, PathCapable):
    """GET /orders/{order_id} (+Observe): the id is the capability, nothing else is needed."""

    rt = "restock.order"

    def __init__(self, hub: HubServices) -> None:
        super().__init__()
        self.hub = hub
        self.observers: dict[str, set[Any]] = {}
        self.observation_count = 0

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        order_id = _order_id(request)
        if order_id is None or self.observation_count >= MAX_OBSERVATIONS:
            return  # not accepted: the client gets a plain answer, no registration
        watchers = self.observers.setdefault(order_id, set())
        watchers.add(serverobservation)
        self.observation_count += 1

        def cancel() -> None:
            watchers.discard(serverobservation)
            self.observation_count -= 1
            if not watchers:
                self.observers.pop(order_id, None)

        serverobservation.accept(cancel)

    def notify(self, order_id: str) -> None:
        """The order changed: every observer gets a fresh rendering."""
        for observation in list(self.observers.get(order_id, ())):
            observation.trigger()

    async def render_get(self, request: Message) -> Message:
        fmt = reply_format(request)
        try:
            self.hub.check_source(request)
            order_id = _order_id(request)
            if order_id is None:
                raise NotFound("not_found", "no such order")
            order = await self.hub.run(get_order_status, self.hub.db, order_id)
        except Exception as exc:
            return self.hub.render_error(exc, fmt, 0)
        updated = order.updated_at.isoformat().replace("+00:00", "Z")
        body = {"id": order.id, "status": order.status, "updated": updated}
        return encode(body, fmt, Code.CONTENT)

    def get_resources_as_linkheader(self) -> LinkFormat:
        """Listed as `</orders>`: the ids themselves are never listed."""
        return LinkFormat([Link("", rt=self.rt, obs=None)])


def _order_id(request: Message) -> str | None:
    path = request.opt.uri_path
    if len(path) == 1 and _ORDER_ID.match(path[0]):
        return str(path[0])
    return None


def build_site(hub: HubServices) -> tuple[Site, OrderStatusResource]:
    """The resource tree, in one place; returns the orders resource for notifications."""
    site = HubSite()
    orders = OrderStatusResource(hub)
    site.add_resource(
        [".well-known", "core"], WKCResource(site.get_resources_as_linkheader, impl_info=None)
    )
    site.add_resource(["link"], LinkResource(hub))
    site.add_resource(["link", "token"], LinkTokenResource(hub))
    site.add_resource(["press"], PressResource(hub))
    site.add_resource(["telemetry"], TelemetryResource(hub))
    site.add_resource(["orders"], orders)
    return site, orders
