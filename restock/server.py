"""Serving: the WSGI app on waitress (a thread) beside the CoAP hub (asyncio, main thread)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable

from waitress.server import create_server

from device_hub.server import Hub, HubConfig
from orders.db import Database
from restock.app import create_app
from restock.settings import Settings

log = logging.getLogger("restock")


def hub_config(settings: Settings) -> HubConfig:
    """The hub's settings, from the process settings."""
    return HubConfig(
        host=settings.coap_host,
        port=settings.coap_port,
        public_url=settings.public_url,
        mdns=settings.mdns,
    )


def serve(settings: Settings, db: Database, *, web: bool = True, hub: bool = True) -> int:
    """Serve until SIGINT/SIGTERM; prints where."""
    return asyncio.run(_serve(settings, db, web=web, hub=hub))


async def _serve(settings: Settings, db: Database, *, web: bool, hub: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stopper(stop, signum))
    server = thread = None
    coap: Hub | None = None
    try:
        if web:
            app = create_app(settings, db)
            server = create_server(app, host=settings.http_host, port=settings.http_port, threads=8)
            thread = threading.Thread(target=server.run, name="http", daemon=True)
            thread.start()
            print(
                f"Restock web, OAuth and API: {settings.public_url} (listening on "
                f"{settings.http_host}:{server.effective_port})",  # type: ignore[union-attr]
                flush=True,
            )
        if hub:
            coap = Hub(db, hub_config(settings))
            await coap.start()
            print(f"Restock CoAP hub: coap://{settings.coap_host}:{coap.port}", flush=True)
        await stop.wait()
    finally:
        if coap is not None:
            await coap.stop()
        if server is not None and thread is not None:
            server.close()
            thread.join(timeout=5)
        db.dispose()
    return 0


def _stopper(stop: asyncio.Event, signum: int) -> Callable[[], None]:
    def on_signal() -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()

    return on_signal
