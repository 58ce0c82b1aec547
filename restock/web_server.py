"""The `web` role: create_app() on gunicorn, N worker processes behind a reverse proxy.

gunicorn rather than waitress for this role: its master forks and watches the workers
(a crashed or stuck one is replaced), each worker is a process of its own (its own GIL and
connection pool, so the web scales with cores), and SIGTERM is a graceful stop: the
master stops accepting, running requests finish within `graceful_timeout`, then it exits 0.
`run` keeps waitress in a thread beside the hub, in one process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from restock import logs, metrics
from restock.settings import Settings

log = logging.getLogger("restock")

# Seconds a worker's running requests get to finish after SIGTERM.
GRACEFUL_TIMEOUT = 30


def default_workers() -> int:
    """gunicorn's rule of thumb: two workers per core, plus one."""
    return (os.cpu_count() or 1) * 2 + 1


@dataclass(frozen=True)
class WebOptions:
    """How many processes and threads serve the web."""

    workers: int
    threads: int = 4


class _Logs(Logger):  # type: ignore[misc]
    """gunicorn's own lines (start, worker exits) in the format every other line uses."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        fmt = Settings.from_env().log_format
        self.error_log.handlers = [logs.handler(fmt)]
        self.error_log.propagate = False


def _child_exit(_server: Any, worker: Any) -> None:
    metrics.mark_process_dead(worker.pid)


def _when_ready(server: Any) -> None:
    for listener in server.LISTENERS:
        print(f"Restock web, OAuth and API: listening on {listener}", flush=True)


class RestockWeb(BaseApplication):  # type: ignore[misc]
    """gunicorn running create_app() in each worker (each opens its own database pool)."""

    def __init__(self, settings: Settings, options: WebOptions) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """gunicorn's settings, from ours; nothing is read from the command line."""
        for key, value in {
            "bind": [f"{self.settings.http_host}:{self.settings.http_port}"],
            "workers": self.options.workers,
            "worker_class": "gthread",
            "threads": self.options.threads,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "logger_class": _Logs,
            "child_exit": _child_exit,
            "when_ready": _when_ready,
            "proc_name": "restock-web",
        }.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """The WSGI app, built in the worker after the fork (so no connection is shared)."""
        from restock.app import create_app

        return create_app(self.settings)


def serve_web(settings: Settings, options: WebOptions) -> int:
    """Run gunicorn until SIGTERM/SIGINT; 0 after a graceful stop."""
    metrics_dir = None
    if settings.metrics_token and metrics.multiprocess_dir() is None:
        # Workers count into files that /metrics (in any worker) adds up; a fresh directory
        # for this master alone (set PROMETHEUS_MULTIPROC_DIR to share it with hub processes).
        metrics_dir = tempfile.mkdtemp(prefix="restock-metrics-")
        os.environ[metrics.MULTIPROC_ENV] = metrics_dir
    master = os.getpid()
    try:
        RestockWeb(settings, options).run()
    finally:
        # Workers are forked inside run() and leave through this frame too: only the master
        # may remove the directory the others still write to.
        if metrics_dir is not None and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
