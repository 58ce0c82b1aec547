"""Serving: the WSGI app on waitress (a thread) beside the CoAP hub (asyncio, main thread)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from waitress.server import create_server

from auth.mail import Mailer
from dashboard.notice_links import NoticeLinks
from device_hub import compat_aiocoap
from device_hub.server import Hub, HubConfig
from orders.domain import ops
from orders.services.notice_delivery import NoticeSender
from orders.services.webhook_dispatch import Dispatcher
from orders.store import compat_psycopg, compat_sqlalchemy
from orders.store.db import Database
from restock import compat_waitress, metrics
from restock.app import create_app
from restock.settings import Settings

log = logging.getLogger("restock")
# Seconds between updates of gauges that are read rather than counted (dedup memory).
GAUGE_INTERVAL = 5.0


def hub_config(settings: Settings) -> HubConfig:
    """The hub's settings, from the process settings."""
    return HubConfig(
        host=settings.coap_host,
        port=settings.coap_port,
        public_url=settings.public_url,
        mdns=settings.mdns,
    )


def check_library_hooks(*, web: bool, hub: bool) -> None:
    """Fail at start, naming it, if a library lost a private name the roles rely on."""
    compat_sqlalchemy.check()
    compat_psycopg.check()
    if web:
        compat_waitress.check()
    if hub:
        compat_aiocoap.check()


def serve(
    settings: Settings, db: Database, *, web: bool = True, hub: bool = True, worker: bool = True
) -> int:
    """Serve until SIGINT/SIGTERM; prints where."""
    check_library_hooks(web=web, hub=hub)
    return asyncio.run(_serve(settings, db, web=web, hub=hub, worker=worker))


async def _serve(settings: Settings, db: Database, *, web: bool, hub: bool, worker: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stopper(stop, signum))
    server = thread = None
    coap: Hub | None = None
    gauges: asyncio.Task[None] | None = None
    if settings.metrics_token and not web:
        metrics.install()  # with the web, create_app installs them
        metrics.watch_pool(db.engine)
    dispatcher: tuple[Dispatcher, threading.Thread] | None = None
    notices: tuple[NoticeSender, threading.Thread] | None = None
    try:
        app = None
        if web:
            app = create_app(settings, db)
            server, thread = start_web(app, settings.http_host, settings.http_port, threads=8)
            print(
                f"Restock web, OAuth and API: {settings.public_url} (listening on "
                f"{settings.http_host}:{server.effective_port})",  # type: ignore[union-attr]
                flush=True,
            )
        if hub:
            coap = Hub(db, hub_config(settings))
            await coap.start()
            print(f"Restock CoAP hub: coap://{settings.coap_host}:{coap.port}", flush=True)
            if app is not None:
                app.extensions["restock"]["ready_checks"]["hub"] = _hub_ready(coap)
            if settings.metrics_token:
                gauges = asyncio.create_task(_hub_gauges(coap))
        if worker:
            dispatcher = start_dispatcher(settings, db)
            print("Restock webhook dispatcher: running", flush=True)
            notices = start_notice_sender(settings, db)
            if notices is not None:
                print("Restock notice e-mail: running", flush=True)
        freeze_startup_heap()
        await stop.wait()
    finally:
        # The hub first: it answers every press it took while the web still serves.
        if gauges is not None:
            gauges.cancel()
        if dispatcher is not None:
            stop_dispatcher(*dispatcher)
        if notices is not None:
            notices[0].stop()
            notices[1].join(timeout=30)
        if coap is not None:
            await coap.stop()
        if server is not None and thread is not None:
            stop_web(server, thread)
        db.dispose()
        metrics.mark_process_dead(os.getpid())
    log.info("stopped")
    return 0


def _hub_ready(coap: Hub) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if coap.bound else "the CoAP hub is not serving"

    return check


async def _hub_gauges(coap: Hub) -> None:
    """Keep the hub's gauges current (the hot path only counts)."""
    while True:
        ops.gauge(ops.DEDUP_ENTRIES, float(coap.duplicate_entries()))
        await asyncio.sleep(GAUGE_INTERVAL)


def start_dispatcher(settings: Settings, db: Database) -> tuple[Dispatcher, threading.Thread]:
    """The webhook dispatcher in a thread of its own (it also raises the shoppers' notices)."""
    dispatcher = Dispatcher(db, allow_private=settings.webhook_allow_private)
    thread = threading.Thread(target=dispatcher.run, name="webhooks", daemon=True)
    thread.start()
    return dispatcher, thread


def stop_dispatcher(dispatcher: Dispatcher, thread: threading.Thread) -> None:
    """Stop taking deliveries; the ones in flight finish (each is bounded by its time-out)."""
    dispatcher.stop()
    thread.join(timeout=30)


def start_notice_sender(
    settings: Settings, db: Database
) -> tuple[NoticeSender, threading.Thread] | None:
    """E-mail for the shoppers' notices, when RESTOCK_SMTP_URL is set; else None."""
    if not settings.smtp_url:
        return None
    settings = settings.with_secret_key()  # the e-mails' signed links need the app's key
    sender = NoticeSender(
        db,
        Mailer(settings.smtp_url, settings.mail_from),
        NoticeLinks(settings.secret_key, settings.public_url),
    )
    thread = threading.Thread(target=sender.run, name="notices", daemon=True)
    thread.start()
    return sender, thread


def freeze_startup_heap() -> None:
    """Take what starting made out of the garbage collector's full passes (once serving).

    A full pass walks every tracked object, and the startup heap (modules, SQLAlchemy's,
    psycopg's and aiocoap's tables) lives as long as the process: walking it paused every
    request in flight. `gc.freeze()` moves it to a generation the collector no longer walks;
    collecting first keeps garbage out of it. A cycle among frozen objects that dies later
    is never freed, which costs at most the startup heap.
    """
    gc.collect()
    gc.freeze()


def _stopper(stop: asyncio.Event, signum: int) -> Callable[[], None]:
    def on_signal() -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()

    return on_signal


def start_web(
    app: Callable[..., Any], host: str, port: int, *, threads: int = 4, name: str = "http"
) -> tuple[Any, threading.Thread]:
    """The WSGI app on waitress, its loop in a daemon thread; returns the server and thread."""
    server = create_server(app, host=host, port=port, threads=threads)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    return server, thread


def stop_web(server: Any, thread: threading.Thread) -> None:
    """Stop a server from start_web: running requests finish, then every socket closes."""
    server.task_dispatcher.shutdown()
    compat_waitress.close_every_socket(server)
    thread.join(timeout=5)


@contextmanager
def web_in_thread(
    app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, *, threads: int = 4
) -> Iterator[str]:
    """start_web for the length of a with-block; yields the base URL (tests, benchmarks)."""
    server, thread = start_web(app, host, port, threads=threads)
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        stop_web(server, thread)
