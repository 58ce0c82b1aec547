"""The webhook endpoints API: create, list, change, rotate, test, deliveries, redeliver, events."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from auth.tokens import issue_token
from orders.services.ordering import press
from orders.services.webhook_dispatch import Dispatcher
from orders.store.db import Database
from tests.factories import build_world, db_snapshot
from tests.webhook_receiver import webhook_receiver

SCOPES = "webhooks:read webhooks:write"


def _client(app: Flask, db: Database, store_id: int, scope: str = SCOPES) -> FlaskClient:
    with db.write() as session:
        token = issue_token(session, client_id="test", kind="merchant", scope=scope,
                            store_id=store_id, with_refresh=False).access_token  # fmt: skip
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _json(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json()
    return body


def test_creating_an_endpoint_shows_its_secret_once(app_factory: Any, db: Database) -> None:
    """POST answers 201 {id, url, events, secret}; reading it later shows no secret."""
    app = app_factory(db, webhook_allow_private=True)
    world = build_world(db)
    client = _client(app, db, world.store_id)
    response = client.post(
        "/api/v1/webhook-endpoints",
        json={"url": "https://example.com/hooks", "events": ["order.placed", "order.shipped"]},
    )
    assert response.status_code == 201
    body = _json(response)
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["order.placed", "order.shipped"]
    assert response.headers["Location"].endswith(f"/webhook-endpoints/{body['id']}")
    listed = _json(client.get("/api/v1/webhook-endpoints"))["endpoints"]
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
    rotated = _json(client.post(f"/api/v1/webhook-endpoints/{body['id']}/rotate-secret"))
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]


def test_private_urls_and_unknown_types_are_refused_with_problem_json(
    app_factory: Any, db: Database
) -> None:
    """Loopback without the operator setting, and unknown event types: 400, nothing written."""
    app = app_factory(db)
    world = build_world(db)
    client = _client(app, db, world.store_id)
    before = db_snapshot(db)
    for payload in (
        {"url": "http://127.0.0.1:8080/x"},
        {"url": "http://169.254.169.254/"},
        {"url": "https://example.com/x", "events": ["order.exploded"]},
        {"url": "https://example.com/x", "secret": "mine"},
        {"url": "file:///etc/passwd"},
    ):
        response = client.post("/api/v1/webhook-endpoints", json=payload)
        assert response.status_code == 400, payload
        assert response.mimetype == "application/problem+json"
    assert (
        _json(client.post("/api/v1/webhook-endpoints", json={"url": "http://10.0.0.1/"}))["reason"]
        == "private_address"
    )
    assert db_snapshot(db) == before


def test_a_read_only_token_cannot_create_and_another_store_sees_nothing(
    app_factory: Any, db: Database
) -> None:
    """webhooks:read lists but cannot create (403); another store's endpoint is a 404."""
    app = app_factory(db)
    world = build_world(db)
    other = build_world(db, slug="other")
    reader = _client(app, db, world.store_id, "webhooks:read")
    assert (
        reader.post("/api/v1/webhook-endpoints", json={"url": "https://a.example/"}).status_code
        == 403
    )
    mine = _json(_client(app, db, world.store_id).post(
        "/api/v1/webhook-endpoints", json={"url": "https://a.example/"}
    ))  # fmt: skip
    theirs = _client(app, db, other.store_id)
    for method, path in (
        ("get", f"/api/v1/webhook-endpoints/{mine['id']}"),
        ("delete", f"/api/v1/webhook-endpoints/{mine['id']}"),
        ("post", f"/api/v1/webhook-endpoints/{mine['id']}/test"),
        ("get", f"/api/v1/webhook-endpoints/{mine['id']}/deliveries"),
    ):
        assert getattr(theirs, method)(path).status_code == 404, path
    assert _json(theirs.get("/api/v1/webhook-endpoints"))["endpoints"] == []


def test_test_event_deliveries_and_redelivery_through_the_api(
    app_factory: Any, db: Database
) -> None:
    """A test event is delivered to a real receiver, logged, and redelivered on request."""
    app = app_factory(db, webhook_allow_private=True)
    world = build_world(db)
    client = _client(app, db, world.store_id)
    with webhook_receiver() as receiver:
        made = _json(client.post("/api/v1/webhook-endpoints", json={"url": receiver.url}))
        receiver.secret = made["secret"]
        queued = client.post(f"/api/v1/webhook-endpoints/{made['id']}/test")
        assert queued.status_code == 202
        dispatcher = Dispatcher(db, allow_private=True)
        while dispatcher.run_once():
            pass
        assert receiver.types() == ["webhook.test"]
        (log,) = _json(client.get(f"/api/v1/webhook-endpoints/{made['id']}/deliveries"))[
            "deliveries"
        ]
        assert (log["status"], log["attempts"], log["last_status_code"]) == ("delivered", 1, 204)
        again = client.post(
            f"/api/v1/webhook-endpoints/{made['id']}/deliveries/{log['id']}/redeliver"
        )
        assert again.status_code == 202
        while dispatcher.run_once():
            pass
        assert receiver.ids() == [log["event_id"], log["event_id"]]
    assert client.delete(f"/api/v1/webhook-endpoints/{made['id']}").status_code == 204
    assert client.get(f"/api/v1/webhook-endpoints/{made['id']}").status_code == 404


def test_the_event_feed_pages_with_a_cursor(app_factory: Any, db: Database) -> None:
    """GET /events?after= replays events oldest first; the last page's cursor stays put."""
    app = app_factory(db)
    world = build_world(db)
    press(db, world.device_id, 1)
    client = _client(app, db, world.store_id)
    first = _json(client.get("/api/v1/events?limit=1"))
    assert [e["type"] for e in first["events"]] == ["device.linked"]
    rest = _json(client.get(f"/api/v1/events?after={first['next_after']}"))
    assert [e["type"] for e in rest["events"]] == ["order.placed"]
    assert rest["events"][0]["data"]["status"] == "placed"
    empty = _json(client.get(f"/api/v1/events?after={rest['next_after']}"))
    assert empty == {"events": [], "next_after": rest["next_after"]}
    assert client.get("/api/v1/events?after=bogus").status_code == 400


def test_the_openapi_document_describes_the_webhook_routes(app: Flask) -> None:
    """The document names the webhook endpoints' create route and the event feed."""
    paths = _json(app.test_client().get("/api/v1/openapi.json"))["paths"]
    assert "post" in paths["/api/v1/webhook-endpoints"]
    assert "/api/v1/events" in paths
