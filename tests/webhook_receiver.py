"""A real webhook receiver on loopback: verifies each POST with `standardwebhooks`, records it,
and can be told to fail or stall the next requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One verified POST."""

    webhook_id: str
    body: dict[str, Any]
    path: str


@dataclass
class Receiver:
    """What arrived, and what to answer next."""

    url: str
    secret: str = ""
    received: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    # Answers for the next requests, in order: an HTTP status, ("stall", s), ("slow", s) or
    # ("long", n).
    script: list[Any] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    in_request: threading.Event = field(default_factory=threading.Event)
    # The client ports POSTs came from: one per TCP connection the sender opened.
    peers: set[int] = field(default_factory=set)

    def types(self) -> list[str]:
        """The event types received, in arrival order."""
        return [item.body["type"] for item in self.received]

    def ids(self) -> list[str]:
        """The `webhook-id`s received, in arrival order."""
        return [item.webhook_id for item in self.received]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until `count` verified POSTs arrived (or fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} webhooks arrived")
                self.arrived.wait(left)
            return list(self.received)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                receiver.attempts += 1
                receiver.peers.add(self.client_address[1])
                answer = receiver.script.pop(0) if receiver.script else 200
            if isinstance(answer, tuple) and answer[0] == "long":
                self._reply(500, b"x" * answer[1])  # ("long", n): a 500 with an n-byte body
                return
            if isinstance(answer, tuple):
                # ("stall", s): hang, then refuse (the sender is gone by then);
                # ("slow", s): hang, then accept as usual.
                receiver.in_request.set()
                time.sleep(answer[1])
                if answer[0] == "stall":
                    self._reply(503, b"stalled")
                    return
                answer = 200
            if answer != 200:
                self._reply(answer, b"not now")
                return
            try:
                event = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
            except WebhookVerificationError as exc:
                receiver.rejected.append(str(exc))
                self._reply(400, b"bad signature")
                return
            with receiver.arrived:
                receiver.received.append(Received(self.headers["webhook-id"], event, self.path))
                receiver.arrived.notify_all()
            self._reply(204, b"")

        def _reply(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)
            except OSError:  # the sender hung up (timed out, or was killed)
                self.close_connection = True

    return Handler


@contextmanager
def webhook_receiver(secret: str = "") -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1 for the length of the with-block."""
    receiver = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    receiver.secret = secret
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def body_of(raw: bytes) -> dict[str, Any]:
    """A JSON body."""
    parsed: dict[str, Any] = json.loads(raw)
    return parsed
