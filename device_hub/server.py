"""The hub: aiocoap server context, outbox watcher and mDNS advertisement, started as one."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiocoap import Context

from device_hub.batching import PressBatcher
from device_hub.compat_aiocoap import HubContext, bound_port
from device_hub.dedup import (
    DEFAULT_LIFETIME,
    DEFAULT_MAX_ENTRIES,
    RecentMessages,
    bound_duplicate_memory,
)
from device_hub.identity import DeviceIdentity, Identify
from device_hub.limits import Rate, RateLimiter
from device_hub.mdns import Advertisement
from device_hub.observe import OutboxWatcher
from device_hub.oscore import ContextIndex, OscoreSite
from device_hub.oscore_store import ContextStore
from device_hub.resources import HubServices, build_site
from orders.services.telemetry import Policy, link_policy
from orders.store.db import Database

log = logging.getLogger("restock.hub")
# How long a stopping hub waits for requests in flight: 10 s in 10 ms steps.
_DRAIN_STEP = 0.01
_DRAIN_STEPS = 1000


@dataclass(frozen=True)
class HubConfig:
    """How the hub listens and how much it lets each device and address do."""

    host: str = "127.0.0.1"
    port: int = 5683
    public_url: str = "http://127.0.0.1:8000"
    mdns: bool = True
    # A button presses a few times a minute at most; polling the device flow is once per
    # `interval` (5 s). A home network behind one NAT address holds many devices.
    device_rate: Rate = field(default_factory=lambda: Rate(per_second=2.0, burst=10))
    source_rate: Rate = field(default_factory=lambda: Rate(per_second=200.0, burst=400))
    dedup_entries: int = DEFAULT_MAX_ENTRIES
    dedup_lifetime: float = DEFAULT_LIFETIME
    workers: int | None = None  # None: 2 on SQLite, 8 on PostgreSQL (see Hub.__init__)
    # Presses commit in groups on their own writer threads. One: while it commits, the next
    # batch gathers, and fewer, larger batches cost less CPU per press (bench/README.md).
    press_writers: int = 1
    # How often the outbox is read for Observe: SQLite has only this; PostgreSQL is told of
    # each change by LISTEN/NOTIFY and reads the outbox only to cover lost notifications.
    poll_interval: float = 0.5
    listen_poll_interval: float = 5.0


class Hub:
    """One running hub; `await start()`, then `await stop()`."""

    def __init__(
        self,
        db: Database,
        config: HubConfig,
        *,
        policy: Policy = link_policy,
        identify: Identify | None = None,
    ) -> None:
        self.db = db
        self.config = config
        # SQLite runs one writer at a time and a waiting one naps in its busy handler, so
        # more threads only add naps; PostgreSQL works on many connections at once.
        workers = config.workers or (2 if db.dialect == "sqlite" else 8)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="hub")
        identify = identify or DeviceIdentity(db)
        device_limit = RateLimiter(config.device_rate)
        self.services = HubServices(
            db=db,
            executor=self.executor,
            identify=identify,
            source_limit=RateLimiter(config.source_rate),
            device_limit=device_limit,
            public_url=config.public_url,
            policy=policy,
            # Presses go to their own writer thread(s); the pool above serves the rest.
            presses=PressBatcher(db, identify, device_limit, writers=config.press_writers),
        )
        inner, self.orders = build_site(self.services)
        # Protected requests are unprotected (and struck out in the database) before the
        # resources see them; plain ones pass through for each resource to judge.
        self.contexts = ContextIndex(ContextStore(db))
        self.site = OscoreSite(
            inner, self.contexts, self.services.run, admit=self.services.check_source
        )
        self.context: Context | None = None
        self.recent: list[RecentMessages] = []
        self.watcher: OutboxWatcher | None = None
        self.advertisement: Advertisement | None = None
        self.port = config.port

    @property
    def bound(self) -> bool:
        """Whether the hub's socket is open and serving."""
        return self.context is not None and not self.services.presses.closing

    def duplicate_entries(self) -> int:
        """Messages held in the duplicate-detection memory now."""
        return sum(len(recent) for recent in self.recent)

    async def start(self) -> None:
        """Bind the UDP socket, start notifications and the mDNS advertisement."""
        # Only udp6 (it also serves IPv4): aiocoap's defaults would add TCP, TLS and
        # WebSocket servers on the same port, which we neither need nor test.
        self.context = await HubContext.create_server_context(
            self.site, bind=(self.config.host, self.config.port), transports=["udp6"]
        )
        self.recent = bound_duplicate_memory(
            self.context,
            max_entries=self.config.dedup_entries,
            lifetime=self.config.dedup_lifetime,
        )
        self.port = bound_port(self.context) or self.config.port
        self.watcher = OutboxWatcher(
            self.db,
            self.services.run,
            self.orders.notify,
            poll_interval=self.config.poll_interval,
            listen_poll_interval=self.config.listen_poll_interval,
        )
        await self.watcher.start()
        if self.config.mdns:
            self.advertisement = await _advertise(self.config.host, self.port)
        log.info("CoAP hub on coap://%s:%s", self.config.host, self.port)

    async def stop(self) -> None:
        """Unregister from mDNS, answer every press taken, then close the socket and the pool.

        Presses that arrive meanwhile get 5.03 with Max-Age: the device tries again (another
        hub, or this one restarted) and nothing it was told was placed is lost.
        """
        if self.advertisement is not None:
            await self.advertisement.stop()
            self.advertisement = None
        await self.services.presses.drain()
        # Requests already past their press (or telemetry) finish and send their answers.
        for _ in range(_DRAIN_STEPS):
            if not self.services.in_flight:
                break
            await asyncio.sleep(_DRAIN_STEP)
        await asyncio.sleep(0)
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = None
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.services.presses.close()
        self.site.strikes.close()


async def _advertise(host: str, port: int) -> Advertisement | None:
    """Start the mDNS advertisement, or say why not and go on without it."""
    advertisement = None
    try:
        advertisement = Advertisement(host, port)
        await advertisement.start()
    except Exception as exc:  # no multicast here: devices can still be given the address
        log.warning("mDNS advertisement failed, serving without it: %s", exc)
        if advertisement is not None:
            await advertisement.zeroconf.async_close()
        return None
    return advertisement
