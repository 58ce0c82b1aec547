"""Observe notifications driven from the outbox, whichever process changed the order.

SQLite: poll `order_events` past the last id seen (writers commit one at a time, so ids
appear in order). PostgreSQL: each outbox write also sends `pg_notify` naming the changed
orders, in the same transaction; we LISTEN and notify at once, and still read the outbox
now and then as a safety net for a dropped connection (sequence ids may commit out of
order there, which the notification's own payload covers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from orders.queries.order_feed import (
    ORDER_EVENTS_CHANNEL,
    changes_after,
    latest_event_id,
    notified_order_ids,
)
from orders.store.db import Database

# Past this many, a stalled outbox read costs repeated notifications, not memory.
_MAX_NOTIFIED = 100_000

log = logging.getLogger("restock.hub")
Run = Callable[..., Awaitable[Any]]


class OutboxWatcher:
    """Calls `notify(order_id)` on the event loop for every new outbox row."""

    def __init__(
        self,
        db: Database,
        run: Run,
        notify: Callable[[str], None],
        *,
        poll_interval: float = 0.5,
        listen_poll_interval: float = 5.0,
    ) -> None:
        self.db = db
        self.run = run
        self.notify = notify
        self.listening = db.dialect == "postgresql"
        self.poll_interval = listen_poll_interval if self.listening else poll_interval
        self.cursor = 0
        # Orders already notified through LISTEN since the last outbox read, which then
        # skips them (a change is notified once, not once per path).
        self._notified: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listen_ready = asyncio.Event()

    async def start(self) -> None:
        """Start from the newest row: older changes were before anyone could observe."""
        self.cursor = await self.run(latest_event_id, self.db)
        self._tasks.append(asyncio.create_task(self._poll(), name="outbox-poll"))
        if self.listening:
            self._tasks.append(asyncio.create_task(self._listen(), name="outbox-listen"))
            # Serve with notifications already flowing when we can; the poll covers the rest.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.listen_ready.wait(), 5)
        else:
            self.listen_ready.set()

    async def stop(self) -> None:
        """Cancel the reader tasks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                await self.catch_up()
            except Exception:  # a database hiccup must not end notifications for good
                log.exception("reading the outbox failed; retrying")

    async def catch_up(self) -> None:
        """Notify every row past the cursor that LISTEN has not already notified."""
        notified, self._notified = self._notified, set()
        while True:
            changes = await self.run(changes_after, self.db, self.cursor)
            for change in changes:
                self.cursor = max(self.cursor, change.event_id)
                if change.order_id not in notified:
                    self.notify(change.order_id)
            if len(changes) < 500:
                return

    async def _listen(self) -> None:
        import psycopg  # only on PostgreSQL

        url = self.db.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {ORDER_EVENTS_CHANNEL}")
                    self.listen_ready.set()
                    self._wake.set()  # catch up on anything missed while not listening
                    delay = 0.5
                    async for note in conn.notifies():
                        # The payload names the order: notify at once. The outbox read
                        # (covering notifications lost while reconnecting) runs on the poll
                        # interval, so a press flood is not a query per order placed.
                        for order_id in notified_order_ids(note.payload):
                            self.notify(order_id)
                            if len(self._notified) < _MAX_NOTIFIED:
                                self._notified.add(order_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("LISTEN %s failed; reconnecting", ORDER_EVENTS_CHANNEL)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
