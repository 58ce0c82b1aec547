"""Bounded CoAP duplicate detection, replacing aiocoap's unbounded one (aiocoap issue #183).

aiocoap remembers every request's (remote, message id), and its answer, for
EXCHANGE_LIFETIME (247 s) with a timer each and no cap, and offers no knob for it. This
keeps the same behaviour inside a bounded window:

* a retransmitted CON (same remote and message id) gets the stored answer again, byte for
  byte, within `lifetime` and the last `max_entries` requests (a device retransmits within
  MAX_TRANSMIT_SPAN, 45 s);
* state is an insertion-ordered dict expired lazily from its old end, so no timers;
* entries are plain data (address, message id, answer bytes), which the garbage collector
  does not track.

The hooks into aiocoap's message manager are in compat_aiocoap.py.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from aiocoap import Context
from aiocoap.messagemanager import MessageManager
from aiocoap.numbers.types import CON

from device_hub.compat_aiocoap import message_managers, replace_duplicate_detection, send_raw

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
                send_raw(self.manager, _Replay(message.remote, entry[1]))
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
    for manager in message_managers(context):
        recent = RecentMessages(manager, max_entries, lifetime)
        replace_duplicate_detection(manager, recent.deduplicate, recent.store_response)
        bounded.append(recent)
    if not bounded:
        raise RuntimeError("no UDP message manager found to bound")
    return bounded
