"""A stopping hub answers every press it took, and turns new ones away with 5.03."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from aiocoap.numbers.codes import Code
from sqlalchemy import select, update

from orders.store.db import Database
from orders.store.model import Press, Shopper
from tests.e2e.hub_fixtures import CoapClient, build_devices, start_hub


@contextmanager
def _writes_held(db: Database, shopper_id: int) -> Iterator[None]:
    """Hold what a press batch must lock (SQLite's write lock, the shopper's row) until exit."""
    with db.write() as session:
        # A write that changes nothing: SQLite's one writer lock, PostgreSQL's row lock.
        same = {"monthly_cap_minor": Shopper.monthly_cap_minor}
        session.execute(update(Shopper).where(Shopper.id == shopper_id).values(same))
        yield


def _until(condition: Callable[[], bool], limit: float = 20) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_stopping_hub_answers_the_press_it_took_and_refuses_new_ones(db: Database) -> None:
    """A press waiting on its batch at stop() gets its 2.01 (and is stored); a later one 5.03."""
    devices = build_devices(db)
    running = start_hub(db)
    hub, coap, late = running.hub, CoapClient(running.uri), CoapClient(running.uri)
    pool = ThreadPoolExecutor(2)
    try:
        with _writes_held(db, devices.world.shopper_id):
            pressed = pool.submit(coap.post, "/press", {"at": devices.button_token, "seq": 1})
            assert _until(lambda: hub.services.in_flight == 1)
            stopping = asyncio.run_coroutine_threadsafe(hub.stop(), running.runner.loop)
            closing = _until(lambda: hub.services.presses.closing)
            if closing:
                refused = late.post("/press", {"at": devices.button_token, "seq": 2})
        answer = pressed.result(timeout=30)
        stopping.result(timeout=30)
    finally:
        pool.shutdown()
        coap.close()
        late.close()
        running.runner.close()
    assert closing, "stop() closed without draining the presses it took"
    assert (refused.code, refused.body["error"]) == (Code.SERVICE_UNAVAILABLE, "unavailable")
    assert refused.max_age == 1
    assert answer.code == Code.CREATED and answer.body["result"] == "placed"
    with db.read() as session:
        assert session.scalars(select(Press.seq)).all() == [1]
