"""`python -m restock worker` processes against a real receiver: SIGKILL, SIGTERM, two workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.services.webhooks import create_endpoint
from orders.store.db import Database
from orders.store.model import WebhookDelivery
from tests.conftest import Backend
from tests.e2e.conftest import ROOT, restock_env
from tests.factories import World, build_world
from tests.webhook_receiver import Receiver, webhook_receiver


def _url(backend: Backend) -> str:
    """The backend's URL as a child process must spell it (PostgreSQL: with its schema)."""
    if backend.schema is None:
        return backend.url
    return f"{backend.url}?options=-csearch_path%3D{backend.schema}"


def _worker(tmp_path: Path, backend: Backend) -> subprocess.Popen[str]:
    env = restock_env(tmp_path, _url(backend), RESTOCK_WEBHOOK_ALLOW_PRIVATE="on")
    return subprocess.Popen(
        [sys.executable, "-m", "restock", "worker"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out


def _deliveries(db: Database) -> list[tuple[str, int]]:
    with db.read() as session:
        rows = session.execute(
            select(WebhookDelivery.status, WebhookDelivery.attempts).order_by(WebhookDelivery.id)
        ).all()
    return [(row.status, row.attempts) for row in rows]


def _orders(db: Database, world: World, count: int) -> None:
    for _ in range(count):
        request = OrderRequest(world.store_id, world.shopper_id, "api", (LineRequest("AA", 1),))
        place_order(db, request)


def _subscribe(db: Database, world: World, receiver: Receiver) -> None:
    endpoint = create_endpoint(
        db, world.store_id, receiver.url, ["order.placed"], allow_private=True
    )
    assert endpoint.secret is not None
    receiver.secret = endpoint.secret


def _wait_settled(db: Database, count: int, timeout: float = 90) -> list[tuple[str, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _deliveries(db)
        if len(rows) == count and all(status != "pending" for status, _ in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"deliveries never settled: {_deliveries(db)}")


def test_a_worker_killed_mid_delivery_loses_nothing(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    """SIGKILL during a POST: another worker delivers every event, retrying the same id."""
    world = build_world(db)
    with webhook_receiver() as receiver:
        _subscribe(db, world, receiver)
        receiver.script = [("stall", 8.0)]
        _orders(db, world, 3)
        first = _worker(tmp_path, backend)
        try:
            assert receiver.in_request.wait(60), "the worker never called"
            first.send_signal(signal.SIGKILL)
        finally:
            if first.poll() is None:
                first.kill()
            first.communicate(timeout=30)
        second = _worker(tmp_path, backend)
        try:
            rows = _wait_settled(db, 3)
        finally:
            _stop(second)
        ids = receiver.ids()
        assert (
            len(set(ids)) == 3
            and sorted(rows) == sorted([("delivered", 1), ("delivered", 1), ("delivered", 2)])
            or all(status == "delivered" for status, _ in rows)
        )
        assert all(status == "delivered" for status, _ in rows)
        assert len(set(ids)) == 3  # every event arrived; a repeat could only be a retry's id


def test_sigterm_lets_the_delivery_in_flight_finish(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    """A worker told to stop mid-POST completes and records it, then exits 0."""
    world = build_world(db)
    with webhook_receiver() as receiver:
        _subscribe(db, world, receiver)
        receiver.script = [("slow", 2.0)]
        press(db, world.device_id, 1)
        worker = _worker(tmp_path, backend)
        try:
            assert receiver.in_request.wait(60), "the worker never called"
            worker.send_signal(signal.SIGTERM)
            out, _ = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == 0, out
        assert receiver.types() == ["order.placed"]
        assert _deliveries(db) == [("delivered", 1)]


def test_two_workers_on_postgresql_deliver_each_event_once(
    backend: Backend, db: Database, tmp_path: Path
) -> None:
    """Two worker processes share the outbox; every event arrives exactly once."""
    if backend.name != "postgresql":
        pytest.skip("several workers share the outbox only on PostgreSQL (SQLite: one process)")
    world = build_world(db)
    with webhook_receiver() as receiver:
        _subscribe(db, world, receiver)
        workers = [_worker(tmp_path, backend) for _ in range(2)]
        try:
            _orders(db, world, 60)
            rows = _wait_settled(db, 60)
        finally:
            outputs = [_stop(worker) for worker in workers]
        assert rows == [("delivered", 1)] * 60, outputs
        ids = receiver.ids()
        assert len(ids) == 60 and len(set(ids)) == 60
