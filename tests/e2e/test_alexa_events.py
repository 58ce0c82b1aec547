"""Alexa Proactive Events: the payloads, and the client against a local stand-in for Login
with Amazon and the events endpoint (no call leaves the machine)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from voice_skill.proactive import (
    ProactiveClient,
    ProactiveError,
    ProactiveSettings,
    event_for,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class StandIn:
    """What the stand-in received, and what it answers next."""

    def __init__(self) -> None:
        self.tokens: list[dict[str, list[str]]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.event_answers: list[int] = []
        self.token_status = 200


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/auth/o2/token":
                state.tokens.append(parse_qs(body.decode()))
                answer = {"access_token": f"Atc|{len(state.tokens)}", "expires_in": 3600}
                self._reply(state.token_status, answer)
            else:
                state.events.append((self.headers["Authorization"], json.loads(body)))
                self._reply(state.event_answers.pop(0) if state.event_answers else 202, {})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, ProactiveClient]]:
    """A local server in Amazon's place, and a client pointed at it."""
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = ProactiveSettings(
        events_url=f"{base}/v1/proactiveEvents/stages/development",
        client_id="amzn1.application-oa2-client.test",
        client_secret="s3cret",
        token_url=f"{base}/auth/o2/token",
    )
    try:
        yield state, ProactiveClient(settings)
    finally:
        server.shutdown()
        server.server_close()


def test_an_order_shipped_event_is_an_order_status_update_for_one_user() -> None:
    """Unicast to the Alexa user, the store as seller, the carrier's expected arrival."""
    event = event_for(
        "order_shipped", {"expected": "2026-12-08T00:00:00Z"},
        user_id="amzn1.ask.account.X", store_name="Corner shop", now=NOW, reference_id="n-1",
    )  # fmt: skip
    assert event["event"] == {
        "name": "AMAZON.OrderStatus.Updated",
        "payload": {
            "state": {
                "status": "ORDER_SHIPPED",
                "deliveryDetails": {"expectedArrival": "2026-12-08T00:00:00Z"},
            },
            "order": {"seller": {"name": "localizedattribute:sellerName"}},
        },
    }
    assert event["relevantAudience"] == {
        "type": "Unicast",
        "payload": {"user": "amzn1.ask.account.X"},
    }
    assert event["localizedAttributes"] == [{"locale": "en-US", "sellerName": "Corner shop"}]
    assert event["timestamp"] == "2026-12-06T12:00:00.000Z"
    assert event["expiryTime"] == "2026-12-07T11:00:00.000Z"
    assert event["referenceId"] == "n-1"


def test_an_approval_is_an_urgent_message_alert() -> None:
    """What needs the shopper's answer is a message alert marked urgent."""
    event = event_for("approval_needed", {}, user_id="u", store_name="S", now=NOW)
    assert event["event"]["name"] == "AMAZON.MessageAlert.Activated"
    assert event["event"]["payload"]["messageGroup"]["urgency"] == "URGENT"


def test_the_client_takes_one_token_and_posts_events_with_it(
    stand_in: tuple[StandIn, ProactiveClient],
) -> None:
    """Client credentials with the proactive events scope, once; each event with the bearer."""
    state, client = stand_in
    for kind in ("order_placed", "order_delivered"):
        client.send(event_for(kind, {}, user_id="u", store_name="S", now=NOW))
    assert state.tokens == [
        {
            "grant_type": ["client_credentials"],
            "client_id": ["amzn1.application-oa2-client.test"],
            "client_secret": ["s3cret"],
            "scope": ["alexa::proactive_events"],
        }
    ]
    assert [auth for auth, _ in state.events] == ["Bearer Atc|1", "Bearer Atc|1"]
    statuses = [body["event"]["payload"]["state"]["status"] for _, body in state.events]
    assert statuses == ["ORDER_RECEIVED", "ORDER_DELIVERED"]


def test_a_rejected_token_is_renewed_once(stand_in: tuple[StandIn, ProactiveClient]) -> None:
    """401 from the events endpoint: a new token, the same event again."""
    state, client = stand_in
    state.event_answers = [401, 202]
    client.send(event_for("order_placed", {}, user_id="u", store_name="S", now=NOW))
    assert [auth for auth, _ in state.events] == ["Bearer Atc|1", "Bearer Atc|2"]


def test_refusals_are_errors_not_silence(stand_in: tuple[StandIn, ProactiveClient]) -> None:
    """An events endpoint that fails, or a token endpoint that refuses, raise ProactiveError."""
    state, client = stand_in
    state.event_answers = [500]
    with pytest.raises(ProactiveError):
        client.send(event_for("order_placed", {}, user_id="u", store_name="S", now=NOW))
    state.token_status = 400
    with pytest.raises(ProactiveError):
        fresh = ProactiveClient(client.settings)
        fresh.send(event_for("order_placed", {}, user_id="u", store_name="S", now=NOW))
