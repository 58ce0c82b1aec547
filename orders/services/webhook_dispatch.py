"""The webhook dispatcher: fans the outbox out to endpoints and delivers, retrying.

One `Dispatcher` per process (`python -m restock worker`, or a thread of `run`). Each pass
publishes new outbox rows as deliveries, then claims due deliveries and POSTs them from a
small thread pool. On PostgreSQL it sleeps on LISTEN for the outbox's NOTIFY; elsewhere it
polls. `stop()` lets the deliveries in flight finish and settle.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from orders.domain.webhooks import DISABLE_AFTER, LEASE, TOTAL_TIMEOUT, retry_delay
from orders.services.webhook_http import Outcome, Sender
from orders.services.webhooks import event_bodies, event_id_text
from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent
from orders.store.outbox import ORDER_EVENTS_CHANNEL
from orders.store.webhook_queue import Claimed, claim, fan_out, settle

log = logging.getLogger("restock.webhooks")


class Dispatcher:
    """Delivers webhooks until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool = False,
        concurrency: int = 8,
        poll_interval: float = 1.0,
        lease: timedelta = LEASE,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        total_timeout: float = TOTAL_TIMEOUT,
    ) -> None:
        self.total_timeout = total_timeout
        self.db = db
        self.allow_private = allow_private
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease = lease
        self.clock = clock
        self.rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._local = threading.local()
        self._senders: list[Sender] = []
        self._senders_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhook")
        self._listener: threading.Thread | None = None

    def run(self) -> None:
        """Work until `stop()`; a database hiccup is logged and retried, never fatal."""
        if self.db.dialect == "postgresql":
            self._listener = threading.Thread(
                target=self._listen, name="webhook-listen", daemon=True
            )
            self._listener.start()
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("webhook dispatch failed; retrying")
                busy = False
            if not busy:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        self._pool.shutdown(wait=True)
        for sender in self._senders:
            sender.close()

    def stop(self) -> None:
        """Ask `run` to return once the deliveries in flight are settled."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for work now (an outbox row or a redelivery was committed)."""
        self._wake.set()

    def run_once(self) -> bool:
        """One pass: fan out, then deliver what is due; True when there may be more."""
        published = self.db.run_write(lambda session: fan_out(session, self.clock()))
        claimed = self.db.run_write(
            lambda session: claim(session, self.clock(), self.lease, limit=self.concurrency)
        )
        if not claimed:
            return published > 0
        with self.db.read() as session:
            rows = list(
                session.scalars(
                    select(OrderEvent).where(OrderEvent.id.in_({c.event_id for c in claimed}))
                )
            )
            bodies = event_bodies(session, rows)
        futures = [
            self._pool.submit(self._deliver, item, bodies.get(item.event_id)) for item in claimed
        ]
        for future in futures:
            future.result()
        return True

    def _deliver(self, item: Claimed, body: dict[str, Any] | None) -> None:
        if body is None:  # the event's order was erased meanwhile: nothing left to send
            outcome = Outcome(False, None, "event no longer exists")
        else:
            outcome = self._sender().post(item.url, item.secret, event_id_text(item.event_id), body)
        now = self.clock()
        retry_in = None if outcome.ok else retry_delay(item.attempt, self.rng)
        if body is None:
            retry_in = None
        self.db.run_write(
            lambda session: settle(
                session,
                item,
                ok=outcome.ok,
                now=now,
                status_code=outcome.status_code,
                response=outcome.response,
                retry_in=retry_in,
                disable_after=DISABLE_AFTER,
            )
        )
        if not outcome.ok:
            log.info(
                "webhook %s to endpoint %s failed (attempt %s): %s %s",
                event_id_text(item.event_id),
                item.endpoint_id,
                item.attempt,
                outcome.status_code,
                outcome.response[:80],
            )

    def _sender(self) -> Sender:
        sender: Sender | None = getattr(self._local, "sender", None)
        if sender is None:
            sender = Sender(allow_private=self.allow_private, total_timeout=self.total_timeout)
            self._local.sender = sender
            with self._senders_lock:
                self._senders.append(sender)
        return sender

    def _listen(self) -> None:
        import psycopg  # only on PostgreSQL

        url = self.db.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        delay = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {ORDER_EVENTS_CHANNEL}")
                    self._wake.set()  # catch up on anything committed before listening
                    delay = 0.5
                    while not self._stop.is_set():
                        for _note in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except Exception:
                log.exception("LISTEN %s failed; reconnecting", ORDER_EVENTS_CHANNEL)
                with contextlib.suppress(Exception):
                    self._stop.wait(delay)
                delay = min(delay * 2, 30.0)
