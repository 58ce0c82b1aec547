"""What operators see over HTTP: /metrics, /readyz, request ids, and their trail."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiocoap.numbers.codes import Code
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, text, update

from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent
from tests.conftest import AppFactory
from tests.e2e.hub_fixtures import CoapClient, build_devices, start_hub, stop_hub

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
PRESS = "/api/v1/device/press"


def _metrics(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200, response.data
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _press(app: Flask, token: str, seq: int, request_id: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return app.test_client().post(
        PRESS, data=json.dumps({"seq": seq}), headers=headers, content_type="application/json"
    )


def test_metrics_is_not_served_when_no_token_is_set(app: Flask) -> None:
    """RESTOCK_METRICS_TOKEN unset: /metrics does not exist (404)."""
    assert app.test_client().get("/metrics").status_code == 404


def test_metrics_refuses_a_missing_or_wrong_bearer_token(
    app_factory: AppFactory, db: Database
) -> None:
    """401 problem+json without the token or with another one; 200 with it."""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": METRICS_TOKEN}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
    good = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert good.status_code == 200 and good.mimetype == "text/plain"


def test_every_metric_name_starts_with_restock(app_factory: AppFactory, db: Database) -> None:
    """Only Restock's own metrics are served, each named restock_…"""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    app.test_client().get("/healthz")
    names = {name for name, _labels in _metrics(app)}
    assert names and all(name.startswith("restock_") for name in names), names
    assert "restock_http_requests_total" in names


def test_a_press_counts_as_a_press_an_order_and_a_request(
    app_factory: AppFactory, db: Database
) -> None:
    """A placed press adds one to presses{placed}, orders_placed{button} and the route's count."""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    devices = build_devices(db)
    before = _metrics(app)
    assert _press(app, devices.button_token, 1).status_code == 201
    assert _press(app, devices.button_token, 1).get_json()["result"] == "duplicate"
    after = _metrics(app)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("restock_presses_total", result="placed") == 1
    assert grew("restock_presses_total", result="duplicate") == 1
    assert grew("restock_orders_placed_total", channel="button") == 1
    route = {"route": PRESS, "method": "POST", "code": "201"}
    assert grew("restock_http_requests_total", **route) == 2
    assert grew("restock_http_request_seconds_count", route=PRESS) == 2
    assert grew("restock_token_checks_total", result="valid") == 2


def test_a_refused_token_counts_as_a_failed_token_check(
    app_factory: AppFactory, db: Database
) -> None:
    """A press with an unknown token adds to token_checks{invalid_token}."""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    before = _metrics(app)
    assert _press(app, "x" * 43, 1).status_code == 401
    after = _metrics(app)
    key = ("restock_token_checks_total", (("result", "invalid_token"),))
    assert after[key] - before.get(key, 0.0) == 1


def test_the_callers_request_id_comes_back(app: Flask) -> None:
    """X-Request-Id given: the answer carries the same id."""
    response = app.test_client().get("/healthz", headers={"X-Request-Id": "req-42.a:b"})
    assert response.headers["X-Request-Id"] == "req-42.a:b"


@pytest.mark.parametrize("given", [None, "", "has space", "x" * 129, "semi;colon"])
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(
    app: Flask, given: str | None
) -> None:
    """No id, or one that is not a short plain token: a fresh random one, never the given text."""
    headers = {} if given is None else {"X-Request-Id": given}
    first = app.test_client().get("/healthz", headers=headers).headers["X-Request-Id"]
    second = app.test_client().get("/healthz", headers=headers).headers["X-Request-Id"]
    assert len(first) == 32 and int(first, 16) >= 0 and first != second


def test_an_error_answer_carries_the_request_id_too(app: Flask) -> None:
    """A 404 problem+json is answered with the request's id."""
    response = app.test_client().get("/api/v1/nothing-here", headers={"X-Request-Id": "err-1"})
    assert response.status_code == 404 and response.headers["X-Request-Id"] == "err-1"


def test_the_request_id_is_written_into_the_outbox_event_it_causes(
    app: Flask, db: Database
) -> None:
    """A press over HTTP with X-Request-Id: its order.placed event's data holds that id."""
    devices = build_devices(db)
    assert _press(app, devices.button_token, 1, request_id="trace-me-7").status_code == 201
    with db.read() as session:
        # Linking the devices wrote device events before the request; only the order's counts.
        events = session.scalars(select(OrderEvent).where(OrderEvent.order_id.is_not(None))).all()
    assert [event.data.get("request_id") for event in events] == ["trace-me-7"]


def test_readyz_is_200_when_the_database_is_at_head(app: Flask) -> None:
    """Database answers and migrations are at head: 200 ready."""
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ready"


def test_readyz_is_503_when_migrations_are_behind(app: Flask, db: Database) -> None:
    """The database at an older revision than the code: 503 naming migrations, until migrated."""
    with db.engine.begin() as conn:
        saved = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert "migrations" in response.get_json()["checks"]
    finally:
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))
            for version in saved:
                conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": version})
    assert app.test_client().get("/readyz").status_code == 200


def test_readyz_reports_a_role_that_is_down(app: Flask) -> None:
    """A role's check (the hub in `run`) that fails makes /readyz 503 with its reason."""
    app.extensions["restock"]["ready_checks"]["hub"] = lambda: "the CoAP hub is not serving"
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"hub": "the CoAP hub is not serving"}


def test_an_order_from_a_falling_supply_level_counts_as_an_appliance_order(
    app_factory: AppFactory, db: Database
) -> None:
    """Telemetry at the reorder point places an order: orders_placed{appliance} grows by one."""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    devices = build_devices(db)
    before = _metrics(app)
    response = app.test_client().post(
        "/api/v1/device/telemetry",
        data=json.dumps([{"n": "pods", "u": "count", "v": 5}]),
        headers={"Authorization": f"Bearer {devices.appliance_token}"},
        content_type="application/senml+json",
    )
    assert response.get_json()["action"] == "ordered"
    key = ("restock_orders_placed_total", (("channel", "appliance"),))
    assert _metrics(app)[key] - before.get(key, 0.0) == 1


def test_a_press_over_coap_counts_its_request_its_result_and_its_batch(
    app_factory: AppFactory, db: Database
) -> None:
    """One CoAP press: coap_requests{press, 2.01}, presses{placed}, one batch of size 1."""
    app = app_factory(db, metrics_token=METRICS_TOKEN)
    devices = build_devices(db)
    running = start_hub(db)
    coap = CoapClient(running.uri)
    try:
        before = _metrics(app)
        assert coap.post("/press", {"at": devices.button_token, "seq": 1}).code == Code.CREATED
        after = _metrics(app)
    finally:
        coap.close()
        stop_hub(running)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("restock_coap_requests_total", resource="press", code="2.01") == 1
    assert grew("restock_coap_request_seconds_count", resource="press") == 1
    assert grew("restock_presses_total", result="placed") == 1
    assert grew("restock_press_batch_size_count") == 1
    assert grew("restock_press_batch_size_sum") == 1


def test_webhook_deliveries_are_counted_by_outcome_and_the_lag_is_a_gauge(
    app_factory: AppFactory, db: Database
) -> None:
    """A delivery answered 500 counts as retrying; its retry answered 204 as delivered; the
    dispatcher reports its outbox lag (nothing left waiting: 0)."""
    from orders.services.ordering import press
    from orders.services.webhook_dispatch import Dispatcher
    from orders.services.webhooks import create_endpoint
    from tests.factories import build_world
    from tests.webhook_receiver import webhook_receiver

    app = app_factory(db, metrics_token=METRICS_TOKEN)
    world = build_world(db)
    with webhook_receiver() as receiver:
        endpoint = create_endpoint(db, world.store_id, receiver.url, None, allow_private=True)
        assert endpoint.secret is not None
        receiver.secret = endpoint.secret
        before = _metrics(app)
        press(db, world.device_id, 1)
        receiver.script = [500]
        clock = _Clock()
        dispatcher = Dispatcher(db, allow_private=True, clock=clock, concurrency=2)
        while dispatcher.run_once():
            pass
        clock.now += timedelta(days=1)  # past any backoff
        while dispatcher.run_once():
            pass
        clock.now += timedelta(minutes=1)  # the worker reports its lag again, with nothing waiting
        dispatcher.run_once()
    after = _metrics(app)

    def grew(outcome: str) -> float:
        key = ("restock_webhook_deliveries_total", (("outcome", outcome),))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert (grew("retrying"), grew("delivered"), grew("failed")) == (1, 1, 0)
    assert after[("restock_outbox_lag_seconds", ())] == 0.0


class _Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def test_readyz_names_the_outbox_lag_and_degrades_past_its_limit(
    app_factory: AppFactory, db: Database
) -> None:
    """An outbox event nobody fanned out for ten minutes: still 200, status degraded, the
    lag named; under the limit it is ready."""
    from tests.factories import build_world

    world = build_world(db)
    with db.write() as session:
        session.execute(update(OrderEvent).values(created_at=utcnow() - timedelta(minutes=10)))
        session.add(OrderEvent(store_id=world.store_id, type="stock.low", status="low",
                               created_at=utcnow() - timedelta(minutes=10)))  # fmt: skip
    strict = app_factory(db, outbox_lag_limit=60.0).test_client().get("/readyz")
    assert strict.status_code == 200
    body = strict.get_json()
    assert body["status"] == "degraded" and "outbox" in body["degraded"]
    assert 590 <= body["outbox_lag_seconds"] <= 700
    lenient = app_factory(db, outbox_lag_limit=3600.0).test_client().get("/readyz").get_json()
    assert lenient["status"] == "ready" and "degraded" not in lenient


def test_outbox_lag_counts_due_deliveries_but_not_backoff(db: Database) -> None:
    """A delivery due ten minutes ago is lag; one waiting out its backoff, or of a disabled
    endpoint, is not."""
    from orders.services.webhooks import create_endpoint
    from orders.store.model import WebhookDelivery, WebhookEndpoint
    from orders.store.webhook_queue import outbox_lag
    from tests.factories import build_world

    world = build_world(db)
    endpoint = create_endpoint(db, world.store_id, "http://127.0.0.1:9/", None, allow_private=True)
    now = utcnow()
    with db.write() as session:
        session.execute(update(OrderEvent).values(published_at=now))
        event = OrderEvent(store_id=world.store_id, type="stock.low", status="low",
                           created_at=now, published_at=now)  # fmt: skip
        session.add(event)
        session.flush()
        session.add(WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, type="stock.low",
                                    next_attempt_at=now + timedelta(hours=1)))  # fmt: skip
    with db.read() as session:
        assert outbox_lag(session, now) == 0.0
    with db.write() as session:
        session.execute(update(WebhookDelivery).values(next_attempt_at=now - timedelta(minutes=10)))
    with db.read() as session:
        assert outbox_lag(session, now) == pytest.approx(600.0)
    with db.write() as session:
        session.execute(update(WebhookEndpoint).values(enabled=False))
    with db.read() as session:
        assert outbox_lag(session, now) == 0.0
