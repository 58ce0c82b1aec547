"""A carrier's slip reaches an observing device over a real CoAP socket (Observe)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import cbor2
from aiocoap import GET, Message
from aiocoap.numbers.codes import Code

from orders.services.lifecycle import mark_shipped
from orders.services.tracking import record_tracking_event
from orders.store.db import Database, make_engine, utcnow
from tests.conftest import Backend
from tests.e2e.hub_fixtures import CoapClient, build_devices, client, hub

__all__ = ["client", "hub"]  # fixtures used by name


def test_a_delay_is_notified_to_the_observer_with_the_new_expected_day(
    db: Database, backend: Backend, client: CoapClient
) -> None:
    """Shipped, observed; the carrier's later day (from another pool) arrives as `expected`."""
    devices = build_devices(db)
    placed = client.post("/press", {"at": devices.button_token, "seq": 1}).body["order"]
    mark_shipped(db, placed["id"], devices.world.store_id, "1ZOBS")
    promised = (utcnow() + timedelta(days=2)).date().isoformat()
    late = (utcnow() + timedelta(days=7)).date()
    kwargs = {}
    if backend.schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={backend.schema}"}
    other = Database(make_engine(backend.url, **kwargs))

    async def observe(context: Any) -> list[dict[str, Any]]:
        request = Message(code=GET, uri=client.base + f"/orders/{placed['id']}", observe=0)
        pending = context.request(request)
        first = await pending.response
        assert first.code == Code.CONTENT
        bodies = [cbor2.loads(first.payload)]
        await asyncio.get_running_loop().run_in_executor(
            None,
            lambda: record_tracking_event(
                other, store_id=devices.world.store_id, order_id=placed["id"],
                external_id="e1", status="exception", occurred_at=utcnow(),
                estimated_delivery=late, description="Weather delay",
            ),
        )  # fmt: skip

        async def until_delayed() -> None:
            async for notification in pending.observation:
                bodies.append(cbor2.loads(notification.payload))
                if bodies[-1].get("expected") == late.isoformat():
                    return

        await asyncio.wait_for(until_delayed(), 15)
        pending.observation.cancel()
        return bodies

    try:
        bodies = client.run(observe, timeout=20)
    finally:
        other.dispose()
    assert bodies[0]["status"] == "shipped" and bodies[0]["expected"] == promised
    assert bodies[-1]["status"] == "shipped" and bodies[-1]["expected"] == late.isoformat()
