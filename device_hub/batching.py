"""Group commit for presses: presses that arrive while a batch commits go in the next one.

A press crosses threads twice: the event loop queues it for a writer thread, and the writer
hands every answer of its batch back to the loop in one `call_soon_threadsafe`. In between,
`orders.services.presses.run_presses` runs one write transaction (its docstring walks through it);
this module's part in it is `_Admission`: the token read it sends in the batch's first
flight (`device_hub.identity`), and the step that turns those rows into presses (who each
device is, and its rate limit).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from auth.principal import InvalidToken
from device_hub.errors import RateLimited, ShuttingDown
from device_hub.identity import Identify
from device_hub.limits import RateLimiter
from orders.domain import ops
from orders.queries.snapshots import PlaceResult
from orders.services.presses import Candidates, PressRequest, count_presses, run_presses
from orders.store.db import Database, utcnow

_STOP = object()
SCOPE = "orders:place"


@dataclass(frozen=True)
class _Item:
    """One press as it came in: the request body (token and all), and who awaits it."""

    body: dict[str, Any]
    seq: int
    boot: str
    future: asyncio.Future[PlaceResult]


class PressBatcher:
    """Writer threads that take every waiting press and handle them in one transaction."""

    def __init__(
        self,
        db: Database,
        identify: Identify,
        device_limit: RateLimiter,
        *,
        writers: int = 1,
        max_batch: int = 64,
    ) -> None:
        self.db = db
        self.identify = identify
        self.device_limit = device_limit
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Presses taken and not yet answered; `drain` waits for them.
        self._unanswered: set[asyncio.Future[PlaceResult]] = set()
        self.closing = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"hub-press-{n}", daemon=True)
            for n in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, body: dict[str, Any], seq: int, boot: str) -> asyncio.Future[PlaceResult]:
        """Queue a press (on the event loop); the future settles once its batch committed.

        It fails with the press's refusal: InvalidToken, RateLimited or a DomainError.
        """
        if self.closing:
            raise ShuttingDown(1)
        future: asyncio.Future[PlaceResult] = asyncio.get_running_loop().create_future()
        self._unanswered.add(future)
        future.add_done_callback(self._unanswered.discard)
        self._queue.put(_Item(body, seq, boot, future))
        return future

    async def drain(self, timeout: float = 30.0) -> None:
        """Take no new press (5.03), and wait until every press taken has its answer.

        Nothing joins the set once closing; a batch the database holds past `timeout` (it
        would fail and answer its presses with an error anyway) stops waiting.
        """
        self.closing = True
        if self._unanswered:
            await asyncio.wait(list(self._unanswered), timeout=timeout)

    def close(self) -> None:
        """Finish what is queued, then stop the writer threads."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            # No waiting for company: a batch is whatever queued up during the last commit,
            # so a lone press is never delayed, and a burst shares one commit.
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            self._place(batch)  # type: ignore[arg-type]

    def _place(self, batch: list[_Item]) -> None:
        answers: Sequence[PlaceResult | Exception]
        started = time.perf_counter()
        try:
            admission = _Admission(self, batch)
            answers = run_presses(self.db, admission.candidates, admission)
        except Exception as exc:  # a database failure fails every press of the batch
            answers = [exc] * len(batch)
        ops.observe(ops.PRESS_BATCH_SECONDS, time.perf_counter() - started)
        ops.observe(ops.PRESS_BATCH_SIZE, len(batch))
        results = count_presses(answers, _result_of)
        if results["rate_limited"]:
            ops.count(ops.RATE_LIMITED, "hub_device", amount=results["rate_limited"])
        loops: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Any]]] = {}
        for item, answer in zip(batch, answers, strict=True):
            loops.setdefault(item.future.get_loop(), []).append((item, answer))
        for loop, settled in loops.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed while we worked: nobody is waiting
                pass


class _Admission:
    """Turns a batch's bodies into presses, inside the batch's transaction.

    The devices' tokens are read in the batch's first flight, with the batch's own reads
    (`Candidates`). Runs again if the batch is retried: tokens are re-read (a revocation
    in between counts), rate limits are not charged twice.
    """

    def __init__(self, batcher: PressBatcher, batch: list[_Item]) -> None:
        self.batcher = batcher
        self.batch = batch
        self.limited: dict[int, RateLimited | None] = {}
        self.identified = batcher.identify.many([item.body for item in batch])
        self.candidates = Candidates(
            reads=self.identified.reads,
            devices=self.identified.devices,
            seqs=sorted({item.seq for item in batch}),
            boots=sorted({item.boot for item in batch}),
        )

    def __call__(self, rows: Sequence[list[Any]]) -> list[PressRequest | Exception]:
        principals = self.identified.principals(rows, SCOPE, utcnow())
        admitted: list[PressRequest | Exception] = []
        for index, (item, principal) in enumerate(zip(self.batch, principals, strict=True)):
            if isinstance(principal, Exception):
                admitted.append(principal)
                continue
            assert principal.device_id is not None  # Identify guarantees a device
            if index not in self.limited:
                wait = self.batcher.device_limit.take(principal.device_id)
                self.limited[index] = RateLimited(wait) if wait else None
            refused = self.limited[index]
            admitted.append(refused or PressRequest(principal.device_id, item.seq, item.boot))
        return admitted


def _result_of(answer: object) -> str:
    if isinstance(answer, RateLimited):
        return "rate_limited"
    return "invalid_token" if isinstance(answer, InvalidToken) else "error"


def _settle(settled: list[tuple[_Item, PlaceResult | Exception]]) -> None:
    for item, answer in settled:
        if item.future.done():  # the request was cancelled (its exchange timed out)
            continue
        if isinstance(answer, Exception):
            item.future.set_exception(answer)
        else:
            item.future.set_result(answer)
