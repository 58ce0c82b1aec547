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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain import ops
from orders.domain.webhooks import DISABLE_AFTER, LEASE, TOTAL_TIMEOUT, retry_delay
from orders.services.lifecycle import cancel_lapsed_test_orders
from orders.services.low_alerts import scan_low_levels
from orders.services.notifications import notices_from_events
from orders.services.webhook_sending import Outcome, Sender
from orders.services.webhooks import EVENT_COLUMNS, event_bodies, event_id_text
from orders.store.db import Database, utcnow
from orders.store.model import OrderEvent
from orders.store.outbox import ORDER_EVENTS_CHANNEL
from orders.store.sql import in_list
from orders.store.webhook_queue import Attempt, Claimed, claim, fan_out, outbox_lag, settle

log = logging.getLogger("restock.webhooks")
# A POST's delivery, how it went, and whether a failure may be retried.
Result = tuple[Claimed, Outcome, bool]
# How often low stock and low supplies, and test orders past their window, are looked for.
SCAN_EVERY = timedelta(seconds=10)
# How often a pass also reads the outbox lag for its gauge (one more query).
LAG_EVERY = timedelta(seconds=5)


_EVENTS_BY_ID = select(*EVENT_COLUMNS).where(in_list(OrderEvent.id, "ids"))


class Dispatcher:
    """Delivers webhooks until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        allow_private: bool = False,
        concurrency: int = 32,
        poll_interval: float | None = None,
        lease: timedelta = LEASE,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        total_timeout: float = TOTAL_TIMEOUT,
    ) -> None:
        self.total_timeout = total_timeout
        self.db = db
        self.allow_private = allow_private
        self.concurrency = concurrency
        # PostgreSQL wakes us with NOTIFY, so its poll is only a safety net.
        self.poll_interval = poll_interval or (2.0 if db.dialect == "postgresql" else 0.2)
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
        self._next_scan: datetime | None = None
        self._next_lag: datetime | None = None

    def run(self) -> None:
        """Work until `stop()`; a database hiccup is logged and retried, never fatal.

        Claims more while earlier POSTs are still in flight, so the database's round trips
        overlap the receivers' answers; what finished is settled in the same transaction as
        the next claim (or alone, when there is no room to claim).
        """
        if self.db.dialect == "postgresql":
            self._listener = threading.Thread(
                target=self._listen, name="webhook-listen", daemon=True
            )
            self._listener.start()
        in_flight: set[Future[Result]] = set()
        finished: list[Attempt] = []
        while not self._stop.is_set() or in_flight or finished:
            claimed = published = 0
            room = not self._stop.is_set() and len(in_flight) <= self.concurrency // 2
            if room or finished:
                limit = self.concurrency - len(in_flight) if room else 0
                try:
                    added, published = self._start(limit, finished)
                except Exception:  # unsettled rows come due again when their lease lapses
                    log.exception("webhook dispatch failed; retrying")
                    added = set()
                    if self._stop.is_set():
                        finished = []  # their leases lapse; another worker retries them
                    else:
                        self._stop.wait(min(self.poll_interval, 1.0))
                else:
                    finished = []
                in_flight |= added
                claimed = len(added)
            if in_flight:
                done, in_flight = self._finished(in_flight, block=not claimed and not finished)
                finished += self._attempts(done)
            elif not claimed and not published and not finished:
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
        """One pass: fan out, deliver what is due, settle; True when there may be more."""
        in_flight, published = self._start(self.concurrency, [])
        if not in_flight:
            return published > 0
        while in_flight:
            done, in_flight = self._finished(in_flight, block=True)
            self._start(0, self._attempts(done))
        return True

    def _start(self, limit: int, finished: list[Attempt]) -> tuple[set[Future[Result]], int]:
        """Settle `finished`, then fan out, claim up to `limit` and start POSTing them, in one
        transaction; returns the POSTs started and how many outbox rows were fanned out."""
        claimed, published, bodies = self.db.run_write(
            partial(self._take, limit=limit, finished=finished)
        )
        for attempt in finished:  # counted once committed
            if attempt.ok:
                ops.count(ops.WEBHOOK_DELIVERIES, "delivered")
            else:
                outcome = "retrying" if attempt.retry_in is not None else "failed"
                ops.count(ops.WEBHOOK_DELIVERIES, outcome)
        started = {
            self._pool.submit(self._post, item, bodies.get(item.event_id)) for item in claimed
        }
        return started, published

    def _finished(
        self, in_flight: set[Future[Result]], *, block: bool
    ) -> tuple[list[Result], set[Future[Result]]]:
        """The POSTs that have finished (waiting for one when `block`), and the rest. Those
        finishing within a moment of each other share a settle: a worker killed while one
        POST hangs has not left the others to be sent again."""
        done, rest = wait(in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        if rest and done:
            more, rest = wait(rest, timeout=0.005)
            done |= more
        return [future.result() for future in done], rest

    def _take(
        self, session: Session, *, limit: int, finished: list[Attempt]
    ) -> tuple[list[Claimed], int, dict[int, dict[str, Any]]]:
        now = self.clock()
        if finished:
            settle(session, finished, now, DISABLE_AFTER)
        if limit <= 0:
            return [], 0, {}
        if self._next_scan is None or now >= self._next_scan:
            self._next_scan = now + SCAN_EVERY
            scan_low_levels(session, now)
            cancel_lapsed_test_orders(session, now)
        published = fan_out(session, now, on_events=notices_from_events)
        if self._next_lag is None or now >= self._next_lag:
            self._next_lag = now + LAG_EVERY
            ops.gauge(ops.OUTBOX_LAG, outbox_lag(session, now))
        claimed = claim(session, now, self.lease, limit=limit)
        if not claimed:
            return [], published, {}
        # Read in the claim's transaction: the bodies cost no transaction of their own.
        ids = sorted({c.event_id for c in claimed})
        rows = session.connection().execute(_EVENTS_BY_ID, {"ids": ids}).all()
        return claimed, published, event_bodies(session, rows)

    def _post(self, item: Claimed, body: dict[str, Any] | None) -> Result:
        if body is None:  # the event's order was erased meanwhile: nothing left to send
            return item, Outcome(False, None, "event no longer exists"), False
        message_id = event_id_text(item.event_id)
        outcome = self._sender().post(item.url, item.secret, message_id, body)
        if not outcome.ok:
            log.info(
                "webhook %s to endpoint %s failed (attempt %s): %s %s",
                message_id,
                item.endpoint_id,
                item.attempt,
                outcome.status_code,
                outcome.response[:80],
            )
        return item, outcome, True

    def _attempts(self, results: list[Result]) -> list[Attempt]:
        """How each POST went, and when a failed one is tried again (None: given up)."""
        return [
            Attempt(
                item,
                outcome.ok,
                outcome.status_code,
                outcome.response,
                retry_delay(item.attempt, self.rng) if retryable and not outcome.ok else None,
            )
            for item, outcome, retryable in results
        ]

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
