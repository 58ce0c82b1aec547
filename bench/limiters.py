"""Per-call cost of the hub's rate limiter beside the `limits` library's, same keys, same run.

python -m bench.limiters [--calls N] [--keys K]

The hub takes its source-address limit for every datagram on the event loop, before the
payload is read, so a limiter's cost per call is paid by every request, floods included.
Each row times `take(key)` over N calls: the hand-made token bucket (device_hub/limits.py)
and `limits` with in-memory storage (what Flask-Limiter uses for the HTTP limits) in its
three strategies, each wrapped to answer as `take` does (0, or whole seconds to wait).
Cases, at the hub's per-address rate: K keys in turn (a flood from many addresses, each
under its limit), and one key over its limit (every call refused, as in a flood from one).
The last column is the CPU the process spends in one idle second afterwards, while the K
keys are held: `limits`' memory storage walks every key from a timer thread every 10 ms.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Hashable, Sequence

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.strategies import (
    RateLimiter as LimitsStrategy,
)
from rich.console import Console
from rich.table import Table

from device_hub.limits import Rate, RateLimiter


class LimitsTake:
    """`take(key)` over a `limits` strategy: `burst` per `burst / per_second` seconds."""

    def __init__(self, strategy: type[LimitsStrategy], rate: Rate) -> None:
        window = max(1, round(rate.burst / rate.per_second))
        self.item = RateLimitItemPerSecond(int(rate.burst), window)
        self.limiter = strategy(MemoryStorage())

    def take(self, key: Hashable) -> int:
        """0 when allowed, else whole seconds until the window lets one more through."""
        name = str(key)
        if self.limiter.hit(self.item, name):
            return 0
        reset = self.limiter.get_window_stats(self.item, name).reset_time
        return max(1, math.ceil(reset - time.time()))


def _per_call_us(take: Callable[[Hashable], int], keys: Sequence[Hashable], calls: int) -> float:
    count = len(keys)
    start = time.perf_counter()
    for i in range(calls):
        take(keys[i % count])
    return (time.perf_counter() - start) / calls * 1e6


def _idle_cpu_ms(seconds: float = 1.0) -> float:
    """CPU ms per second this process spends while its main thread sleeps."""
    start = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - start) / seconds * 1000


def main(argv: Sequence[str] | None = None) -> None:
    """Print µs per call for each limiter and case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args(argv)
    source = Rate(per_second=200.0, burst=400)  # the hub's per-address default
    address = ("192.0.2.1", 5683)
    many = [(f"192.0.2.{i % 250}", 1024 + i) for i in range(args.keys)]
    cases = [(f"{args.keys} keys in turn, allowed", many), ("one key, refused", [address])]
    makers: list[tuple[str, Callable[[Rate], Callable[[Hashable], int]]]] = [
        ("hand-made token bucket", lambda rate: RateLimiter(rate).take),
        ("limits moving window", lambda rate: LimitsTake(MovingWindowRateLimiter, rate).take),
        ("limits fixed window", lambda rate: LimitsTake(FixedWindowRateLimiter, rate).take),
        (
            "limits sliding counter",
            lambda rate: LimitsTake(SlidingWindowCounterRateLimiter, rate).take,
        ),
    ]
    table = Table(title=f"take(key): µs per call ({args.calls} calls)")
    table.add_column("limiter")
    for case, _keys in cases:
        table.add_column(case, justify="right")
    table.add_column(f"idle CPU ms/s, {args.keys} keys held", justify="right")
    for name, make in makers:
        cells = []
        for _case, keys in cases:
            take = make(source)
            cells.append(f"{_per_call_us(take, keys, args.calls):.2f}")
        take = make(source)
        _per_call_us(take, many, len(many))
        cells.append(f"{_idle_cpu_ms():.0f}")
        del take
        table.add_row(name, *cells)
    Console().print(table)


if __name__ == "__main__":
    main()
