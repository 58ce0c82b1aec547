"""Group commit for presses: presses that arrive while a batch commits go in the next one."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

from orders.db import Database
from orders.errors import DomainError
from orders.presses import PressRequest, press_batch
from orders.views import PlaceResult

Answer = PlaceResult | DomainError
_STOP = object()


class PressBatcher:
    """Writer threads that take every waiting press and place them in one transaction."""

    def __init__(self, db: Database, *, writers: int = 1, max_batch: int = 64) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"hub-press-{n}", daemon=True)
            for n in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: PressRequest) -> Future[Answer]:
        """Queue a press; the future resolves once its batch has committed."""
        future: Future[Answer] = Future()
        self._queue.put((item, future))
        return future

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
            self._place(batch)

    def _place(self, batch: list[object]) -> None:
        items = [entry[0] for entry in batch]  # type: ignore[index]
        futures: list[Future[Answer]] = [entry[1] for entry in batch]  # type: ignore[index]
        try:
            answers = press_batch(self.db, items)
        except Exception as exc:  # a database failure fails every press of the batch
            for future in futures:
                future.set_exception(exc)
            return
        for future, answer in zip(futures, answers, strict=True):
            future.set_result(answer)
