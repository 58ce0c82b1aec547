"""What one source may cost the hub: token-bucket rate limits and the amplification bound.

Hand-made rather than `limits` (which the HTTP limits use): it runs per datagram on the
event loop, and `limits` has no token bucket for burst-plus-rate (bench/README.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aiocoap import Message

# RFC 7252 §11.3: an answer to a request that proves nothing about its source (it may be
# spoofed) stays within this many times the request's size on the wire.
AMPLIFICATION = 3


@dataclass(frozen=True)
class Rate:
    """`per_second` sustained, bursts up to `burst`."""

    per_second: float
    burst: float


class RateLimiter:
    """Buckets keyed by device or address; the least recently seen are forgotten past `max_keys`."""

    def __init__(
        self,
        rate: Rate,
        *,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self.clock = clock
        # key -> (tokens, last refill time). Forgetting a key only ever *grants* a fresh
        # burst, so a flood of spoofed addresses can cost us CPU but never unbounded memory.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()  # device limits are taken on writer and pool threads

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable) -> int:
        """Spend one token for `key`: 0 when allowed, else whole seconds until the next token."""
        with self._lock:
            return self._take(key)

    def _take(self, key: Hashable) -> int:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.rate.burst, now))
        tokens = min(self.rate.burst, tokens + (now - last) * self.rate.per_second)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            allowed = 0
        else:
            self._buckets[key] = (tokens, now)
            allowed = max(1, math.ceil((1 - tokens) / self.rate.per_second))
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed


def wire_size(message: Message, token: bytes = b"") -> int:
    """Bytes `message` takes in a CoAP-over-UDP datagram carrying `token`."""
    payload = len(message.payload)
    return 4 + len(token) + len(message.opt.encode()) + (1 + payload if payload else 0)


def within_amplification(request: Message, response: Message) -> bool:
    """Whether `response` stays within AMPLIFICATION times `request` on the wire."""
    token = request.token or b""
    return wire_size(response, token) <= AMPLIFICATION * wire_size(request, token)
