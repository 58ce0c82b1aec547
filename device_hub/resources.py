"""The CoAP resources (CONTRACT.md): each parses, calls one domain service, and answers."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiocoap import CON, Message, error
from aiocoap.numbers.codes import Code
from aiocoap.resource import ObservableResource, PathCapable, Resource, Site, WKCResource
from aiocoap.util.linkformat import Link, LinkFormat

from auth.ace import (
    ACCESS_TOKEN,
    ACE_CLIENT_RECIPIENTID,
    ACE_SERVER_RECIPIENTID,
    NONCE1,
    NONCE2,
    establish_context,
)
from auth.device_flow import (
    DeviceAuthorization,
    DeviceFlowError,
    poll_device_token,
    refresh_device_token,
    start_device_authorization,
)
from auth.oauth_store import DEVICE_GRANT
from auth.principal import InvalidToken, Principal
from device_hub.batching import PressBatcher
from device_hub.blockwise import BoundedBlock1Spool
from device_hub.codec import (
    CBOR,
    JSON,
    PayloadError,
    decode,
    encode,
    reply_format,
    request_format,
)
from device_hub.compat_aiocoap import HubSite, extract_block, underlying_remote
from device_hub.errors import RateLimited, error_answer
from device_hub.identity import MUST_USE_OSCORE, Identify, with_claims
from device_hub.limits import AMPLIFICATION, Rate, RateLimiter, wire_size, within_amplification
from device_hub.oscore import token_digest_of
from orders.domain import ops
from orders.domain.errors import NotFound
from orders.services.lifecycle import Actor, cancel_order, get_order_status, status_body
from orders.services.presses import check_press
from orders.services.telemetry import Policy, record_telemetry
from orders.store.db import Database

log = logging.getLogger("restock.hub")
T = TypeVar("T")

PRESS_MAX_PAYLOAD = 1024
MAX_PAYLOAD = 16 * 1024  # a full 256-record SenML pack fits with room to spare
MAX_OBSERVATIONS = 10_000
# Observers of one order: its device, re-registering after a reboot, and a spare.
MAX_OBSERVERS_PER_ORDER = 4
# Observers behind one address: a home (one NAT address) with many devices, each its orders.
MAX_OBSERVERS_PER_SOURCE = 64
# A NON observer gets a confirmable notification at least this often, so a dead one (or a
# spoofed address) is dropped when it fails to acknowledge (RFC 7641 §4.5: at least daily).
CONFIRM_EVERY = 600.0
# Starting the device flow writes a row: a few per minute from one address, a home's burst.
LINK_RATE = Rate(per_second=0.2, burst=10)
_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
Body = dict[str, Any]
Answer = tuple[Code, Body]


# CoAP request ids: this process's random prefix and a counter (a random id each costs more).
_ID_PREFIX = f"coap-{os.urandom(4).hex()}-"
_REQUEST_NUMBERS = itertools.count(1)


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
    # Separate from source_limit: /link writes a device-code row for an unauthenticated sender.
    link_limit: RateLimiter = field(default_factory=lambda: RateLimiter(LINK_RATE))
    # Requests being answered now (a stopping hub waits for them before closing its socket).
    in_flight: int = 0

    @functools.cached_property
    def link_min_payload(self) -> int:
        """The smallest /link payload whose answer stays within AMPLIFICATION times it."""
        return math.ceil(_link_answer_bound(self.public_url) / AMPLIFICATION)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (database calls) in the pool, off the event loop."""
        loop = asyncio.get_running_loop()
        # run_in_executor does not carry context variables: the request id goes along by hand.
        work = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.executor, work)

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
        *,
        min_payload: int = 0,
        also_limit: RateLimiter | None = None,
    ) -> Message:
        """Parse, handle and render one request; every known error becomes a 4.xx."""
        started = time.perf_counter()
        request_id = ops.REQUEST_ID.set(f"{_ID_PREFIX}{next(_REQUEST_NUMBERS):x}")
        answer: Message | None = None
        self.in_flight += 1
        try:
            answer = await self._answer(
                request, handle, max_payload, assembled, min_payload, also_limit
            )
        finally:
            self.in_flight -= 1
            ops.REQUEST_ID.reset(request_id)
            path = request.opt.uri_path
            # /orders/{id}: one label for every order, so the label set stays small.
            resource = "orders" if path[:1] == ("orders",) else "/".join(path)
            resource += "/cancel" if resource == "orders" and path[-1:] == ("cancel",) else ""
            code = answer.code.dotted if answer is not None else "5.00"
            ops.count(ops.COAP_REQUESTS, resource, code)
            ops.observe(ops.COAP_SECONDS, time.perf_counter() - started, resource)
        return answer

    async def _answer(
        self,
        request: Message,
        handle: Callable[[Body], Awaitable[Answer]],
        max_payload: int,
        assembled: bool,
        min_payload: int,
        also_limit: RateLimiter | None,
    ) -> Message:
        fmt = reply_format(request)
        try:
            self.check_source(request, also_limit)
            partial = request.opt.block1 is not None and not assembled
            if len(request.payload) > max_payload or partial:
                raise PayloadError(
                    f"payload over {max_payload} bytes", Code.REQUEST_ENTITY_TOO_LARGE
                )
            if len(request.payload) < min_payload:
                raise PadRequest(min_payload)
            body = decode(request.payload, request_format(request))
            code, body = await handle(with_claims(body, token_digest_of(request)))
        except Exception as exc:
            return self.render_error(exc, fmt, max_payload, request)
        return encode(body, fmt, code)

    def check_source(self, request: Message, also_limit: RateLimiter | None = None) -> None:
        """Per-address limit(s), before any work is done for the request."""
        address = source_address(request)
        for limiter in (self.source_limit, also_limit):
            wait = limiter.take(address) if limiter is not None else 0
            if wait:
                ops.count(ops.RATE_LIMITED, "hub_address")
                raise RateLimited(wait)

    def render_error(
        self, exc: Exception, fmt: Any, max_payload: int, request: Message | None = None
    ) -> Message:
        """The 4.xx for a known error; anything else is a bug and re-raised (aiocoap: 5.00).

        An error answers a sender not yet identified, so it is cut down to stay within
        AMPLIFICATION times `request`: first the detail goes, then all but `error`, then all.
        """
        known = error_answer(exc)
        if known is None:
            raise exc
        code, body = known
        if isinstance(exc, PadRequest):
            body["pad_to"] = exc.pad_to
        for shorter in (body, _without(body, "detail"), {"error": body["error"]}, None):
            message = encode(shorter, fmt, code) if shorter is not None else Message(code=code)
            if isinstance(exc, RateLimited):
                message.opt.max_age = exc.retry_after
            if code == Code.REQUEST_ENTITY_TOO_LARGE:
                message.opt.size1 = max_payload
            if request is None or within_amplification(request, message):
                break
        return message


class PadRequest(PayloadError):
    """A request whose answer would be over AMPLIFICATION times its size: pad it to `pad_to`."""

    def __init__(self, pad_to: int) -> None:
        self.pad_to = pad_to
        super().__init__(f"pad the payload to {pad_to} bytes")


def _without(body: Body, name: str) -> Body:
    return {key: value for key, value in body.items() if key != name}


def _link_answer_bound(public_url: str) -> int:
    """The largest /link answer payload for `public_url` (JSON, the longer of the two)."""
    shown = "XXXX-XXXX"
    sample = DeviceAuthorization(
        device_code="x" * 64,  # new_secret() is 43 characters: room to spare
        user_code=shown,
        verification_uri=f"{public_url}/link",
        verification_uri_complete=f"{public_url}/link?user_code={shown}",
        expires_in=10**6,
        interval=60,
    )
    return len(encode(sample.as_response(), JSON, Code.CREATED).payload)


def source_address(request: Message) -> str:
    """The request's source IP address (without port), the key of per-address limits."""
    remote = underlying_remote(request.remote)
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr:
        return str(sockaddr[0])
    return str(remote.hostinfo)


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
    """POST /link {client_id, serial[, unit_secret], pad}: start the device flow (RFC 8628).

    Anyone may ask, from any (spoofable) address, so the request must be padded to a third
    of the answer (RFC 7252 §11.3) and each address gets only a few a minute.
    """

    rt = "restock.link"
    ct = "60 50"

    async def render_post(self, request: Message) -> Message:
        hub = self.hub
        return await hub.answer(
            request,
            self.handle,
            self.max_payload,
            min_payload=hub.link_min_payload,
            also_limit=hub.link_limit,
        )

    async def handle(self, body: Body) -> Answer:
        client_id, serial = _text(body, "client_id"), _text(body, "serial")
        unit_secret = _text(body, "unit_secret") if "unit_secret" in body else None
        started = await self.hub.run(
            start_device_authorization,
            self.hub.db,
            client_id=client_id,
            public_url=self.hub.public_url,
            serial=serial,
            unit_secret=unit_secret,
        )
        return Code.CREATED, started.as_response()


class LinkTokenResource(_Post):
    """POST /link/token: the device's poll {client_id, device_code}, or its refresh
    {client_id, grant_type: "refresh_token", refresh_token}."""

    rt = "restock.link.token"
    ct = "60 50"

    async def render_post(self, request: Message) -> Message:
        binary = reply_format(request) != JSON
        handle = functools.partial(self.answer_poll, binary=binary)
        return await self.hub.answer(request, handle, self.max_payload)

    async def answer_poll(self, body: Body, *, binary: bool) -> Answer:
        """Tokens for a poll or a refresh; `cnf` (OSCORE input material) for OSCORE models."""
        client_id = _text(body, "client_id")
        grant_type = body.get("grant_type")
        if grant_type == "refresh_token":
            issued = await self.hub.run(
                refresh_device_token,
                self.hub.db,
                client_id=client_id,
                refresh_token=_text(body, "refresh_token"),
            )
        elif grant_type in (None, DEVICE_GRANT):
            issued = await self.hub.run(
                poll_device_token,
                self.hub.db,
                client_id=client_id,
                device_code=_text(body, "device_code"),
            )
        else:
            raise DeviceFlowError("unsupported_grant_type", "use refresh_token or a device_code")
        answer: Body = {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_in": issued.expires_in,
            "device_id": issued.device_id,
        }
        if issued.osc is not None:
            answer["cnf"] = issued.osc.as_cnf(binary=binary)
        return Code.CONTENT, answer


ACE_CBOR = 19  # application/ace+cbor (RFC 9200 §8.14)


class AuthzInfoResource(_Post):
    """POST /authz-info (RFC 9203 §4.1): a device's token and N1 in, N2 and the hub's
    Recipient ID out; both sides then derive the OSCORE context.

    The one unprotected resource a linked OSCORE device uses: its answer (about 20 bytes) is
    smaller than the token-carrying request, so it amplifies nothing.
    """

    rt = "ace.ai"
    ct = "19"
    max_payload = PRESS_MAX_PAYLOAD

    async def render_post(self, request: Message) -> Message:
        fmt = request.opt.content_format
        if fmt not in (None, ACE_CBOR, CBOR):
            return self.hub.render_error(
                PayloadError("use application/ace+cbor", Code.UNSUPPORTED_CONTENT_FORMAT),
                CBOR, self.max_payload, request,
            )  # fmt: skip
        request.opt.content_format = CBOR
        answer = await self.hub.answer(request, self.handle, self.max_payload)
        if answer.code == Code.CREATED:
            answer.opt.content_format = ACE_CBOR
        return answer

    async def handle(self, body: Body) -> Answer:
        established = await self.hub.run(
            establish_context,
            self.hub.db,
            access_token=body.get(ACCESS_TOKEN),
            nonce1=body.get(NONCE1),
            client_recipient_id=body.get(ACE_CLIENT_RECIPIENTID),
        )
        return Code.CREATED, {
            NONCE2: established.nonce2,
            ACE_SERVER_RECIPIENTID: established.server_recipient_id,
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


@dataclass(eq=False)
class _Observer:
    """One accepted registration and when it last had to confirm."""

    observation: Any
    confirmed_at: float
    confirm_next: bool = False
    registered: bool = False  # its first answer has gone out; later renders are notifications


class OrderStatusResource(ObservableResource, PathCapable):
    """GET /orders/{order_id} (+Observe): the id is the capability, nothing else is needed.

    The order id is unguessable and given only to the device that placed the order (and its
    shopper), so holding it is the proof a GET without a payload can carry. A holder still
    gets few observers: MAX_OBSERVERS_PER_ORDER per order (one change, that many datagrams
    at most, however many spoofed registrations arrive) and MAX_OBSERVERS_PER_SOURCE per
    address; registrations past either are answered once, without Observe.
    """

    rt = "restock.order"

    def __init__(
        self,
        hub: HubServices,
        *,
        confirm_every: float = CONFIRM_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.hub = hub
        self.confirm_every = confirm_every
        self.clock = clock
        self.max_per_order = MAX_OBSERVERS_PER_ORDER
        self.max_per_source = MAX_OBSERVERS_PER_SOURCE
        self.observers: dict[str, set[_Observer]] = {}
        self.per_source: Counter[str] = Counter()
        self.observation_count = 0
        # The request an observation re-renders is the registration's own object.
        self._by_request: dict[int, _Observer] = {}

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False

    async def add_observation(self, request: Message, serverobservation: Any) -> None:
        order_id = _order_id(request)
        source = source_address(request)
        if (
            order_id is None
            or self.observation_count >= MAX_OBSERVATIONS
            or len(self.observers.get(order_id, ())) >= self.max_per_order
            or self.per_source[source] >= self.max_per_source
        ):
            return  # not accepted: the client gets a plain answer, no registration
        observer = _Observer(serverobservation, self.clock())
        watchers = self.observers.setdefault(order_id, set())
        watchers.add(observer)
        self.per_source[source] += 1
        self._by_request[id(request)] = observer
        self.observation_count += 1

        def cancel() -> None:
            watchers.discard(observer)
            self._by_request.pop(id(request), None)
            self.observation_count -= 1
            self.per_source[source] -= 1
            if self.per_source[source] <= 0:
                del self.per_source[source]
            if not watchers:
                self.observers.pop(order_id, None)

        serverobservation.accept(cancel)

    def notify(self, order_id: str) -> None:
        """The order changed: every observer gets a fresh rendering."""
        now = self.clock()
        for observer in list(self.observers.get(order_id, ())):
            if now - observer.confirmed_at >= self.confirm_every:
                observer.confirm_next = True
                observer.confirmed_at = now
            observer.observation.trigger()

    async def render_get(self, request: Message) -> Message:
        fmt = reply_format(request)
        observer = self._by_request.get(id(request))
        try:
            if observer is None or not observer.registered:
                # A notification is our own doing: it must not spend (nor be refused by)
                # the address's budget, or a busy address would silently lose observations.
                self.hub.check_source(request)
            order_id = _order_id(request)
            if order_id is None:
                raise NotFound("not_found", "no such order")
            order = await self.hub.run(get_order_status, self.hub.db, order_id)
            if (
                order.device_id is not None
                and token_digest_of(request) is None
                and await self.hub.run(self.hub.identify.requires_oscore, order.device_id)
            ):
                raise InvalidToken("invalid_token", MUST_USE_OSCORE)
        except Exception as exc:
            return self.hub.render_error(exc, fmt, 0, request)
        body = status_body(order)
        response = encode(body, fmt, Code.CONTENT)
        if not _status_fits(request, response):
            # Anyone holding the id may ask, so the answer stays within the RFC 7252 §11.3
            # bound: the additive `expected` goes first (a request with a token leaves room).
            response = encode(_without(body, "expected"), fmt, Code.CONTENT)
        if observer is not None:
            observer.registered = True
        if observer is not None and observer.confirm_next:
            # Sharp edge: aiocoap sends notifications with the registration's type, so a
            # NON registration would never be asked to confirm; an unacknowledged (or
            # reset) CON notification ends the observation.
            observer.confirm_next = False
            response.mtype = CON
        return response

    def get_resources_as_linkheader(self) -> LinkFormat:
        """Listed as `</orders>`: the ids themselves are never listed."""
        return LinkFormat([Link("", rt=self.rt, obs=None)])


class DiscoveryResource(WKCResource):
    """/.well-known/core (RFC 6690), under the per-address limit and in small Block2 blocks.

    Anyone may ask from a spoofed address: each answer is the largest block (RFC 7959) that
    stays within AMPLIFICATION times the request; `?rt=…` filters as RFC 6690 says.
    """

    def __init__(self, hub: HubServices, listing: Callable[[], LinkFormat]) -> None:
        super().__init__(listing, impl_info=None)
        self.hub = hub

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        return False  # blocks are cut here, to a size that depends on the request

    async def render_get(self, request: Message) -> Message:
        try:
            self.hub.check_source(request)
        except RateLimited as exc:
            return self.hub.render_error(exc, reply_format(request), 0, request)
        full: Message = await super().render_get(request)
        if full.code is not None:  # 4.06: a format other than link-format was asked for
            return full
        full.code = Code.CONTENT
        allowed = AMPLIFICATION * wire_size(request, request.token or b"")
        wanted = request.opt.block2
        size_exp = wanted.size_exponent if wanted is not None else 6
        number = wanted.block_number if wanted is not None else 0
        while size_exp > 0 and not _block_fits(full, request, size_exp, allowed):
            size_exp -= 1
            number *= 2  # the same offset in blocks half as large (RFC 7959 §2.2)
        if wanted is None and len(full.payload) <= 16 << size_exp:
            return full
        # A block past the end raises BadRequest (4.00), which HubSite answers without text.
        return extract_block(full, number, size_exp)


def _block_fits(full: Message, request: Message, size_exp: int, allowed: int) -> bool:
    block = full.copy(payload=full.payload[: 16 << size_exp], block2=(0, True, size_exp))
    return wire_size(block, request.token or b"") <= allowed


ORDERS_PATH = ("orders",)


def _status_fits(request: Message, response: Message) -> bool:
    """Whether an order status answer stays within AMPLIFICATION times its request's datagram.

    Sharp edge: aiocoap hands a PathCapable resource the request with its own path
    (`orders`) already stripped, and adds the Observe option to a notification after we
    render it; both are put back here so the count is the datagrams' own.
    """
    token = request.token or b""
    sent = request.copy(uri_path=(*ORDERS_PATH, *request.opt.uri_path))
    observe = 4 if request.opt.observe is not None else 0  # option header + up to 3 bytes
    return wire_size(response, token) + observe <= AMPLIFICATION * wire_size(sent, token)


def _order_id(request: Message) -> str | None:
    path = request.opt.uri_path
    if len(path) == 1 and _ORDER_ID.match(path[0]):
        return str(path[0])
    return None


class OrderCancelResource(_Post):
    """POST /orders/{order_id}/cancel {at}: the device that placed the order calls it off.

    The same rules as the web decide (orders.domain.actions), for the token's current link
    only; the change writes an outbox event, so observers of the order hear `cancelled`.
    """

    rt = "restock.order.cancel"
    ct = "60 50"
    max_payload = PRESS_MAX_PAYLOAD

    async def render_post(self, request: Message) -> Message:
        order_id = _cancel_target(request)

        async def handle(body: Body) -> Answer:
            if order_id is None:
                raise NotFound("not_found", "no such order")

            def work(device: Principal) -> Body:
                assert device.device_id is not None
                actor = Actor.device(device.device_id, device.link_id)
                return {"order": cancel_order(self.hub.db, order_id, actor).summary()}

            return Code.CHANGED, await self.hub.as_device(body, "orders:place", work)

        return await self.hub.answer(request, handle, self.max_payload)


class OrderRoutes(PathCapable):
    """/orders/…: `{id}` goes to the order (GET, Observe), `{id}/cancel` to its cancel (POST).

    aiocoap's Site has no path templates: one PathCapable owns the prefix and picks by shape.
    """

    def __init__(self, status: OrderStatusResource, cancel: OrderCancelResource) -> None:
        self.status = status
        self.cancel = cancel

    def _route(self, request: Message) -> Resource:
        path = request.opt.uri_path
        if len(path) == 2 and path[1] == "cancel":
            # The site stripped the prefix; the cancel answer's metrics label reads it back.
            request.opt.uri_path = ("orders", *path)
            return self.cancel
        return self.status

    async def render_to_pipe(self, pipe: Any) -> None:
        """Hand the request to the resource its path names."""
        await self._route(pipe.request).render_to_pipe(pipe)

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        """Neither resource takes Block1 uploads."""
        return False

    def get_resources_as_linkheader(self) -> LinkFormat:
        """As the order resource: ids (and so their cancel paths) are never listed."""
        return self.status.get_resources_as_linkheader()


def _cancel_target(request: Message) -> str | None:
    path = request.opt.uri_path
    if len(path) == 3 and path[2] == "cancel" and _ORDER_ID.match(path[1]):
        return str(path[1])
    return None


class QuietSite(HubSite):
    """The hub's site: aiocoap's own error answers go out without their English text."""

    async def render_to_pipe(self, pipe: Any) -> None:
        """As Site.render_to_pipe; aiocoap's own answers (4.04, 4.05, 2.31…) lose their text.

        aiocoap answers them with an English sentence ("Error: Method not allowed!"), which
        for a short spoofed request is over AMPLIFICATION times its size; the code says it all.
        """
        try:
            await super().render_to_pipe(pipe)
        except error.RenderableError as exc:
            answer = exc.to_message()
            answer.payload = b""  # options stay: 2.31 Continue carries Block1
            pipe.add_response(answer, is_last=True)


def build_site(hub: HubServices) -> tuple[Site, OrderStatusResource]:
    """The resource tree, in one place; returns the orders resource for notifications."""
    site = QuietSite()
    orders = OrderStatusResource(hub)
    site.add_resource(
        [".well-known", "core"], DiscoveryResource(hub, site.get_resources_as_linkheader)
    )
    site.add_resource(["link"], LinkResource(hub))
    site.add_resource(["link", "token"], LinkTokenResource(hub))
    site.add_resource(["authz-info"], AuthzInfoResource(hub))
    site.add_resource(["press"], PressResource(hub))
    site.add_resource(["telemetry"], TelemetryResource(hub))
    site.add_resource(list(ORDERS_PATH), OrderRoutes(orders, OrderCancelResource(hub)))
    return site, orders
