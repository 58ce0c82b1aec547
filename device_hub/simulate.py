"""A device on the command line: find the hub, link through the device flow, press or report."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
from aiocoap import POST, Context, Message
from aiocoap.numbers.contentformat import ContentFormat

from device_hub.mdns import discover

# /link requests are padded to a third of the answer (README); this covers a short public URL,
# and the hub's 4.00 names the size (`pad_to`) when more is needed.
LINK_PAD = 128


@dataclass(frozen=True)
class DeviceOptions:
    """What the simulated device is and does."""

    kind: str  # button | appliance
    client_id: str
    serial: str
    hub: str | None = None  # coap://host:port; None: find it by mDNS
    presses: int = 2
    slot: str = "pods"
    unit: str = "count"
    start_level: float = 50.0
    step: float = 12.0
    reports: int = 5
    pause: float = 1.0
    max_wait: float = 600.0
    unit_secret: str | None = None  # for models that require proof of possession
    cancel: bool = False  # a button cancels each order its press placed, at once
    slots: tuple[str, ...] = ()  # several slots reported together (default: `slot` alone)
    faults: tuple[str, ...] = ()  # flag conditions reported as true with each report


class DeviceError(Exception):
    """The simulation can't go on (no hub, linking refused, …)."""


@dataclass
class Tokens:
    """The device's current token pair and when (event-loop time) the access token expires."""

    access_token: str
    refresh_token: str | None
    expires_at: float

    @classmethod
    def of(cls, answer: dict[str, Any], now: float) -> Tokens:
        """From a 2.05 /link/token answer; renewed a little before it expires."""
        lifetime = float(answer.get("expires_in") or 0)
        refresh = answer.get("refresh_token")
        return cls(
            str(answer["access_token"]),
            str(refresh) if refresh else None,
            now + lifetime * REFRESH_AT,
        )


# Renew at 90% of the access token's lifetime, so a send never races its expiry.
REFRESH_AT = 0.9


class SimulatedDevice:
    """A CoAP client speaking the hub's CONTRACT.md resources in CBOR."""

    def __init__(self, options: DeviceOptions, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.out = out
        self.base = options.hub or ""
        self.context: Context | None = None
        self.tokens: Tokens | None = None

    async def call(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST `body` as CBOR; returns the response code (e.g. "2.01") and its map."""
        assert self.context is not None
        request = Message(
            code=POST,
            uri=f"{self.base}{path}",
            payload=cbor2.dumps(body),
            content_format=ContentFormat.CBOR,
        )
        response = await self.context.request(request).response
        answer = cbor2.loads(response.payload) if response.payload else {}
        code = str(response.code.dotted)
        return code, answer if isinstance(answer, dict) else {}

    async def run(self) -> int:
        """Discover, link, then press or report; 0 on success."""
        if not self.base:
            self.out("looking for a Restock hub (mDNS _coap._udp.local.)…")
            found = await discover(timeout=5.0)
            if not found:
                raise DeviceError("no hub found by mDNS; pass --hub coap://host:port")
            self.base = found[0].uri
        self.out(f"hub: {self.base}")
        self.context = await Context.create_client_context()
        try:
            await self.link()
            if self.options.kind == "button":
                await self.press()
            else:
                await self.report()
        finally:
            await self.context.shutdown()
        return 0

    async def link(self) -> str:
        """The RFC 8628 device flow over CoAP; keeps the tokens and returns the access token."""
        opts = self.options
        request: dict[str, Any] = {"client_id": opts.client_id, "serial": opts.serial}
        if opts.unit_secret:
            request["unit_secret"] = opts.unit_secret
        code, started = await self.call("/link", _padded(request, LINK_PAD))
        if code == "4.00" and isinstance(started.get("pad_to"), int):
            code, started = await self.call("/link", _padded(request, started["pad_to"]))
        if code != "2.01":
            raise DeviceError(f"linking refused: {code} {started.get('error')}")
        self.out(f"To link this {opts.kind}, visit {started['verification_uri']}")
        self.out(f"and enter the code {started['user_code']}")
        self.out(f"(or open {started['verification_uri_complete']})")
        interval = float(started.get("interval", 5))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(float(started.get("expires_in", 600)), opts.max_wait)
        poll = {"client_id": opts.client_id, "device_code": started["device_code"]}
        while loop.time() < deadline:
            await asyncio.sleep(interval)
            code, answer = await self.call("/link/token", poll)
            error = answer.get("error")
            if code == "2.05":
                self.out(f"linked as device {answer.get('device_id')}")
                self.tokens = Tokens.of(answer, loop.time())
                return self.tokens.access_token
            if error == "slow_down":
                interval += 5  # RFC 8628 §3.5
            elif error == "authorization_pending":
                continue
            elif code == "4.29":
                continue
            else:
                raise DeviceError(f"linking failed: {code} {error}")
        raise DeviceError("gave up waiting for the shopper")

    async def refresh(self) -> str:
        """Renew the access token with the refresh grant (the refresh token rotates)."""
        assert self.tokens is not None
        if self.tokens.refresh_token is None:
            raise DeviceError("the access token expired and there is no refresh token")
        code, answer = await self.call(
            "/link/token",
            {
                "client_id": self.options.client_id,
                "grant_type": "refresh_token",
                "refresh_token": self.tokens.refresh_token,
            },
        )
        if code != "2.05":
            raise DeviceError(f"refreshing failed: {code} {answer.get('error')}; link again")
        self.tokens = Tokens.of(answer, asyncio.get_running_loop().time())
        self.out("access token renewed")
        return self.tokens.access_token

    async def access_token(self) -> str:
        """A live access token: the current one, or a renewed one when it is about to expire."""
        assert self.tokens is not None, "link first"
        if asyncio.get_running_loop().time() >= self.tokens.expires_at:
            return await self.refresh()
        return self.tokens.access_token

    async def send(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST with the access token as `at`; on 4.01 renew it once and send again."""
        code, answer = await self.call(path, {**body, "at": await self.access_token()})
        if code == "4.01":
            code, answer = await self.call(path, {**body, "at": await self.refresh()})
        return code, answer

    async def press(self) -> None:
        """Press the button `presses` times (a fresh boot id, seq from 1)."""
        boot = secrets.token_hex(4)
        for seq in range(1, self.options.presses + 1):
            code, answer = await self.send("/press", {"seq": seq, "boot": boot})
            order = answer.get("order") or {}
            result = answer.get("result") or answer.get("error")
            detail = answer.get("reason") or order.get("id", "")
            self.out(f"press {seq}: {code} {result} {detail}".rstrip())
            if self.options.cancel and order.get("id"):
                await self.cancel(str(order["id"]))
            await asyncio.sleep(self.options.pause)

    async def cancel(self, order_id: str) -> None:
        """Cancel an order this device placed (inside its cancel window) and print the answer."""
        code, answer = await self.send(f"/orders/{order_id}/cancel", {})
        order = answer.get("order") or {}
        outcome = order.get("status") or answer.get("error")
        self.out(f"cancel {order_id}: {code} {outcome} {answer.get('reason', '')}".rstrip())

    async def report(self) -> None:
        """Report a falling level for its slots (SenML in CBOR, integer labels), and its faults."""
        opts = self.options
        level = opts.start_level
        for _ in range(opts.reports):
            senml: list[dict[int, Any]] = [
                {-2: "", 0: slot, 1: opts.unit, 2: level} for slot in opts.slots or (opts.slot,)
            ]
            senml += [{0: fault, 4: True} for fault in opts.faults]
            code, answer = await self.send("/telemetry", {"senml": senml})
            order = answer.get("order") or {}
            action = answer.get("action") or answer.get("error")
            self.out(f"level {level:g} {opts.unit}: {code} {action} {order.get('id', '')}".rstrip())
            level = max(0.0, level - opts.step)
            await asyncio.sleep(opts.pause)


def _padded(body: dict[str, Any], size: int) -> dict[str, Any]:
    """`body` with a `pad` text making its CBOR at least `size` bytes (the hub asks for it)."""
    short = len(cbor2.dumps({**body, "pad": ""}))
    return {**body, "pad": "." * max(0, size - short + 2)}
