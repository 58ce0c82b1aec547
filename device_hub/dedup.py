"""Bounded CoAP duplicate detection, replacing aiocoap's unbounded one (aiocoap issue #183).

aiocoap 0.4.17's `MessageManager._deduplicate_message` remembers every incoming request's
(remote, message id) — and, once answered, the whole response message — for
EXCHANGE_LIFETIME (247 s), with one `loop.call_later` timer per request and no cap. Under a
flood that is hundreds of MB (about +117 MB per 50k requests measured on this project).
There is no public knob: `EXCHANGE_LIFETIME` lives on each *incoming* message's
`transport_tuning`, which the transport creates, so we replace the two methods that own
the state on our server's message manager instance, and keep the same behaviour inside a
bounded window:

* a retransmitted CON (same remote and message id) still gets the stored answer again,
  byte for byte, as long as it arrives within `lifetime` and the last `max_entries`
  requests — a device retransmits within MAX_TRANSMIT_SPAN (45 s), far inside both;
* state is an insertion-ordered dict expired lazily from its old end, so no timers;
* an entry is plain data: the remote's address, the message id, and the answer's bytes.
  Keeping aiocoap's objects (the remote, the answer Message and, through it, the request)
  made the 20,000 entries some 340,000 objects for the garbage collector, whose full
  passes then paused the hub for 150-350 ms every two seconds under load (bench.hub):
  the p99 of every request. Bytes and tuples of plain values are not tracked by it.

If an aiocoap upgrade renames these internals, `bound_duplicate_memory` raises at start
(tested), rather than silently going back to unbounded memory.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiocoap import Context
from aiocoap.messagemanager import MessageManager
from aiocoap.numbers.types import CON

DEFAULT_MAX_ENTRIES = 20_000
DEFAULT_LIFETIME = 60.0  # > MAX_TRANSMIT_SPAN (45 s): every retransmission is recognised


class _Replay:
    """A stored answer as the transport sends it again: its bytes, to the asker."""

    __slots__ = ("data", "remote")

    def __init__(self, remote: Any, data: bytes) -> None:
        self.remote = remote
        self.data = data

    def encode(self) -> bytes:
        return self.data


def _where(remote: Any) -> Any:
    """The remote as plain data when it is a UDP address (its socket address and the local
    address it reached), else the remote itself."""
    sockaddr = getattr(remote, "sockaddr", None)
    return remote if sockaddr is None else (sockaddr, getattr(remote, "pktinfo", None))


class RecentMessages:
    """Recently seen (where, mid) → (expiry, answer bytes or None), oldest first."""

    def __init__(self, manager: MessageManager, max_entries: int, lifetime: float) -> None:
        self.manager = manager
        self.max_entries = max_entries
        self.lifetime = lifetime
        self.entries: OrderedDict[tuple[Any, int], tuple[float, bytes | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def deduplicate(self, message: Any) -> bool:
        """True if `message` was seen already (and re-send its answer if it is a CON)."""
        now = self.manager.loop.time()
        entries = self.entries
        while entries:
            first = next(iter(entries.values()))
            if first[0] > now:
                break
            entries.popitem(last=False)
        key = (_where(message.remote), message.mid)
        entry = entries.get(key)
        if entry is not None:
            if message.mtype is CON and entry[1] is not None:
                # Straight to the wire as aiocoap does, the stored mid and all: the bytes
                # of an ACK (the answer that shares the request's mid) start no exchange.
                self.manager._send_via_transport(_Replay(message.remote, entry[1]))
            return True
        entries[key] = (now + self.lifetime, None)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        return False

    def store_response(self, message: Any) -> None:
        """Remember the answer to a request we are tracking."""
        key = (_where(message.remote), message.mid)
        entry = self.entries.get(key)
        if entry is not None:
            self.entries[key] = (entry[0], bytes(message.encode()))


def bound_duplicate_memory(
    context: Context,
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    lifetime: float = DEFAULT_LIFETIME,
) -> list[RecentMessages]:
    """Swap bounded duplicate detection into every UDP message manager of `context`."""
    bounded = []
    for token_manager in context.request_interfaces:
        manager = getattr(token_manager, "token_interface", None)
        if not isinstance(manager, MessageManager):
            continue
        for name in (
            "_deduplicate_message",
            "_store_response_for_duplicates",
            "_send_via_transport",
        ):
            if not callable(getattr(manager, name, None)):
                raise RuntimeError(f"aiocoap changed: MessageManager.{name} is gone")
        recent = RecentMessages(manager, max_entries, lifetime)
        manager._deduplicate_message = recent.deduplicate
        manager._store_response_for_duplicates = recent.store_response
        manager._recent_messages = {}  # unused from now on
        bounded.append(recent)
    if not bounded:
        raise RuntimeError("no UDP message manager found to bound")
    return bounded
