"""A device on the command line: find the hub, link through the device flow, press or report."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from aiocoap import POST, Context, Message
from aiocoap.numbers.contentformat import ContentFormat

from auth.ace import (
    ACCESS_TOKEN,
    ACE_CLIENT_RECIPIENTID,
    ACE_SERVER_RECIPIENTID,
    NONCE1,
    NONCE2,
    NONCE_BYTES,
    master_salt,
)
from device_hub.mdns import discover
from device_hub.oscore import DeviceSideContext

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
    oscore: bool = False  # protect requests with OSCORE, keyed through /authz-info (RFC 9203)
    state: str | None = None  # a file keeping the tokens across restarts of the simulator
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
ACE_CBOR = 19  # application/ace+cbor
# The device's own Recipient ID: one context per device, so any short id will do.
DEVICE_ID = b"\x01"
# Protected paths (everything but the device flow and /authz-info).
PROTECTED = ("/press", "/telemetry", "/orders/*")
# How often one send is tried afresh (new sequence number) when the hub is away or restarting.
ATTEMPTS = 8
RETRY_PAUSE = 1.0


def _unb64(text: object) -> bytes:
    if isinstance(text, bytes):
        return text
    value = str(text)
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class SimulatedDevice:
    """A CoAP client speaking the hub's CONTRACT.md resources in CBOR."""

    def __init__(self, options: DeviceOptions, out: Callable[[str], None] = print) -> None:
        self.options = options
        self.out = out
        self.base = options.hub or ""
        self.context: Context | None = None
        self.tokens: Tokens | None = None
        self.osc: dict[str, bytes] | None = None  # the token response's cnf.osc

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
            if not self.load_state():
                await self.link()
            if self.options.oscore:
                if self.osc is None:
                    raise DeviceError("this model did not issue OSCORE keys (a bearer model?)")
                await self.establish()
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
                self.take_tokens(answer)
                return self.tokens.access_token  # type: ignore[union-attr]
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
        self.take_tokens(answer)
        self.out("access token renewed")
        if self.options.oscore:
            await self.establish()  # the context dies with the token it was made from
        return self.tokens.access_token  # type: ignore[union-attr]

    def take_tokens(self, answer: dict[str, Any]) -> None:
        """Keep a token answer (and its OSCORE input material); write the state file."""
        self.tokens = Tokens.of(answer, asyncio.get_running_loop().time())
        osc = (answer.get("cnf") or {}).get("osc")
        if isinstance(osc, dict):
            self.osc = {name: _unb64(osc[name]) for name in ("ms", "salt", "id")}
        self.save_state()

    def save_state(self) -> None:
        """Write the tokens (the only flash write: at link and at refresh, never per request)."""
        if self.options.state is None or self.tokens is None:
            return
        state = {
            "access_token": self.tokens.access_token,
            "refresh_token": self.tokens.refresh_token,
            "osc": {k: base64.urlsafe_b64encode(v).decode() for k, v in (self.osc or {}).items()},
        }
        path = Path(self.options.state)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, path)

    def load_state(self) -> bool:
        """Take the tokens a previous run kept, if any; the token is renewed when first used."""
        if self.options.state is None or not Path(self.options.state).exists():
            return False
        state = json.loads(Path(self.options.state).read_text())
        # Its age is unknown after a restart: the next 4.01 renews it.
        self.tokens = Tokens(state["access_token"], state.get("refresh_token"), float("inf"))
        self.osc = {k: _unb64(v) for k, v in (state.get("osc") or {}).items()} or None
        self.out("restarted: using the stored token")
        return True

    async def establish(self) -> None:
        """RFC 9203 §4.1: post the token and a fresh N1 to /authz-info; derive the context."""
        assert self.context is not None and self.tokens is not None and self.osc is not None
        nonce1 = os.urandom(NONCE_BYTES)
        body = {ACCESS_TOKEN: self.tokens.access_token, NONCE1: nonce1,
                ACE_CLIENT_RECIPIENTID: DEVICE_ID}  # fmt: skip
        request = Message(
            code=POST, uri=f"{self.base}/authz-info", payload=cbor2.dumps(body),
            content_format=ACE_CBOR,
        )  # fmt: skip
        response = await self.context.request(request).response
        answer = cbor2.loads(response.payload) if response.payload else {}
        if str(response.code.dotted) == "4.01" and self.tokens.refresh_token:
            await self.refresh()  # the stored token ended: renew it (refresh re-establishes)
            return
        if str(response.code.dotted) != "2.01" or not isinstance(answer, dict):
            raise DeviceError(f"/authz-info refused: {response.code.dotted} {answer}")
        salt = master_salt(self.osc["salt"], nonce1, answer[NONCE2])
        secctx = DeviceSideContext(
            self.osc["ms"], salt, sender_id=answer[ACE_SERVER_RECIPIENTID], recipient_id=DEVICE_ID
        )
        for path in PROTECTED:
            self.context.client_credentials[f"{self.base}{path}"] = secctx
        self.out("OSCORE context established")

    async def access_token(self) -> str:
        """A live access token: the current one, or a renewed one when it is about to expire."""
        assert self.tokens is not None, "link first"
        if asyncio.get_running_loop().time() >= self.tokens.expires_at:
            return await self.refresh()
        return self.tokens.access_token

    async def send(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST with the access token as `at`; on 4.01 renew it once and send again."""
        if self.options.oscore:
            return await self.send_protected(path, body)
        code, answer = await self.call(path, {**body, "at": await self.access_token()})
        if code == "4.01":
            code, answer = await self.call(path, {**body, "at": await self.refresh()})
        return code, answer

    async def send_protected(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST under OSCORE (no `at`); a lost or refused exchange is sent afresh.

        A hub killed mid-request answers nothing, or (restarted) refuses the retransmission
        as a replay: the same press goes again under a new sequence number, and the hub's
        press dedupe answers it as the one it may already have placed. A 4.01 from a hub
        that lost the context (or a token that ended) re-keys through /authz-info first.
        """
        for attempt in range(ATTEMPTS):
            try:
                code, answer = await self.call(path, body)
            except Exception as exc:  # timeouts, unprotected refusals, a hub going away
                self.out(f"{path}: {type(exc).__name__}; trying again")
                await asyncio.sleep(RETRY_PAUSE)
                if attempt >= 1:
                    await self.establish()
                continue
            if code != "4.01":
                return code, answer
            await self.establish()
        raise DeviceError(f"{path}: no answer after {ATTEMPTS} attempts")

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
