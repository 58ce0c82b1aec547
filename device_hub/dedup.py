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
* state is an insertion-ordered dict expired lazily from its old end, so no timers.

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


class RecentMessages:
    """Recently seen (remote, mid) → [expiry, response or None], oldest first."""

    def __init__(self, manager: MessageManager, max_entries: int, lifetime: float) -> None:
        self.manager = manager
        self.max_entries = max_entries
        self.lifetime = lifetime
        self.entries: OrderedDict[tuple[Any, int], list[Any]] = OrderedDict()

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
        key = (message.remote, message.mid)
        entry = entries.get(key)
        if entry is not None:
            if message.mtype is CON and entry[1] is not None:
                # Same path as aiocoap: straight to the wire, keeping the stored mid.
                self.manager._send_initially(entry[1])
            return True
        entries[key] = [now + self.lifetime, None]
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        return False

    def store_response(self, message: Any) -> None:
        """Remember the answer to a request we are tracking."""
        entry = self.entries.get((message.remote, message.mid))
        if entry is not None:
            entry[1] = message


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
        for name in ("_deduplicate_message", "_store_response_for_duplicates", "_send_initially"):
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
