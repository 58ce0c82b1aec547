"""Serving: the WSGI app on waitress (a production server) beside the CoAP hub."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from waitress.server import create_server

from orders.db import Database
from restock.app import create_app
from restock.settings import Settings

log = logging.getLogger("restock")


def serve(settings: Settings, db: Database) -> int:
    """Serve until SIGINT/SIGTERM; prints where."""
    app = create_app(settings, db)
    server = create_server(app, host=settings.http_host, port=settings.http_port, threads=8)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signum)
        stop.set()
        server.close()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    web = threading.Thread(target=server.run, name="http", daemon=True)
    web.start()
    print(
        f"Restock web, OAuth and API: {settings.public_url} (listening on "
        f"{settings.http_host}:{server.effective_port})",
        flush=True,
    )  # type: ignore[attr-defined]
    stop.wait()
    web.join(timeout=5)
    db.dispose()
    return 0
