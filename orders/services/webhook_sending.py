"""POSTing one signed webhook: Standard Webhooks headers, time-outs, no private addresses.

Against SSRF we check the address each connection actually reached (after DNS), so a name
that resolves, or re-resolves (DNS rebinding), to a private address is refused before a byte
of the request is sent. Redirects are never followed (a 3xx counts as a failure). What we
leave: for https, the TLS handshake has happened by the time we check the peer; and a
merchant's public address that forwards inside its own network is the merchant's business.
"""

from __future__ import annotations

import heapq
import itertools
import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from standardwebhooks.webhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from orders.domain.webhooks import (
    CONNECT_TIMEOUT,
    RESPONSE_PREFIX,
    TOTAL_TIMEOUT,
    address_allowed,
)

USER_AGENT = "Restock-Webhooks/1"
# A response body up to this long is read to its end, so its connection can be reused.
DRAIN_LIMIT = 64 * 1024


class RefusedAddress(OSError):
    """The endpoint's host reached an address webhooks may not use."""


@dataclass(frozen=True)
class Outcome:
    """How one POST went: 2xx is delivered; anything else (or no answer) is retried."""

    ok: bool
    status_code: int | None
    response: str


# The connection the current thread's POST uses, so its deadline can cut it.
_current = threading.local()


def _guarded(base: type[HTTPConnection], allow_private: bool) -> type[HTTPConnection]:
    class Guarded(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            peer = self.sock.getpeername()[0]
            if not address_allowed(peer, allow_private=allow_private):
                self.close()
                raise RefusedAddress(f"{self.host} resolved to refused address {peer}")

        def request(self, *args: Any, **kwargs: Any) -> Any:
            _current.connection = self
            return super().request(*args, **kwargs)

    return Guarded


class _Adapter(HTTPAdapter):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        super().__init__(pool_connections=8, pool_maxsize=8, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http = type(
            "GuardedHTTPPool",
            (HTTPConnectionPool,),
            {"ConnectionCls": _guarded(HTTPConnection, self.allow_private)},
        )
        https = type(
            "GuardedHTTPSPool",
            (HTTPSConnectionPool,),
            {"ConnectionCls": _guarded(HTTPSConnection, self.allow_private)},
        )
        self.poolmanager.pool_classes_by_scheme = {"http": http, "https": https}


class Sender:
    """Signs and POSTs events; one per thread (a requests.Session is not thread-safe)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        user_agent: str = USER_AGENT,
        total_timeout: float = TOTAL_TIMEOUT,
    ) -> None:
        self.total_timeout = total_timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment sees merchants' events
        adapter = _Adapter(allow_private)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.user_agent = user_agent

    def post(self, url: str, secret: str, message_id: str, body: dict[str, Any]) -> Outcome:
        """Sign `body` now and POST it once."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        # Signed at each attempt: receivers refuse timestamps older than five minutes, so a
        # retry an hour later must not reuse the first attempt's signature.
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": self.user_agent,
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, payload),
        }
        return self._send(url, payload, headers)

    def _send(self, url: str, payload: bytes, headers: dict[str, str]) -> Outcome:
        _current.connection = None
        # Time-outs bound each read; this bounds the whole exchange, so a server dripping a
        # byte now and then cannot hold the worker past TOTAL_TIMEOUT.
        started = time.monotonic()
        deadline = _DEADLINES.arm(started + self.total_timeout, _current.__dict__)
        try:
            response = self.session.post(
                url,
                data=payload,
                headers=headers,
                timeout=(CONNECT_TIMEOUT, self.total_timeout),
                allow_redirects=False,
                stream=True,
            )
            prefix = _prefix_and_release(response)
            status = response.status_code
            if time.monotonic() - started >= self.total_timeout:
                return Outcome(False, status, "timed out")
            text = prefix.decode("utf-8", "replace")
            return Outcome(200 <= status < 300, status, text)
        except requests.RequestException as exc:
            if time.monotonic() - started >= self.total_timeout:  # cut by the deadline
                return Outcome(False, None, "timed out")
            return Outcome(False, None, _reason(exc)[:RESPONSE_PREFIX])
        except RefusedAddress as exc:
            return Outcome(False, None, str(exc)[:RESPONSE_PREFIX])
        finally:
            _DEADLINES.disarm(deadline)
            _current.connection = None

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


class _Deadlines:
    """One thread that cuts the connection of a POST still running at its deadline (a
    threading.Timer per POST cost a thread started and stopped for every delivery)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._armed: set[int] = set()
        self._next = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, at: float, state: dict[str, Any]) -> int:
        """Cut `state`'s connection at `at` (time.monotonic) unless disarmed before."""
        token = next(self._next)
        with self._changed:
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (at, token, state))
            self._armed.add(token)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="webhook-deadlines", daemon=True
                )
                self._thread.start()
            elif earliest is None or at < earliest:
                self._changed.notify()
        return token

    def disarm(self, token: int) -> None:
        """The POST ended: leave its connection alone."""
        with self._changed:
            self._armed.discard(token)

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._changed.wait()
                    continue
                at, token, state = self._heap[0]
                left = at - time.monotonic()
                if left > 0:
                    self._changed.wait(left)
                    continue
                heapq.heappop(self._heap)
                self._armed.discard(token)
                _cut(state)


_DEADLINES = _Deadlines()


def _prefix_and_release(response: requests.Response) -> bytes:
    """The body's first bytes (what the delivery log keeps). A short rest is read and the
    connection goes back to the pool (kept alive for the next POST); a long one is cut."""
    raw = response.raw
    try:
        prefix: bytes = raw.read(RESPONSE_PREFIX, decode_content=False) or b""
        left = DRAIN_LIMIT
        while left > 0:
            chunk = raw.read(min(left, 8192), decode_content=False)
            if not chunk:
                raw.release_conn()
                return prefix
            left -= len(chunk)
    except BaseException:
        response.close()
        raise
    response.close()
    return prefix


def _cut(state: dict[str, Any]) -> None:
    connection = state.get("connection")
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reason(exc: requests.RequestException) -> str:
    refused = _refusal_in(exc)
    if refused is not None:
        return str(refused)
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def _refusal_in(exc: BaseException) -> RefusedAddress | None:
    """Our refusal, wherever urllib3 and requests wrapped it (args, cause or context)."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, RefusedAddress):
            return item
        todo += [*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)]
    return None
