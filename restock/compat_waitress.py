"""The private waitress name Restock relies on (`server._map`), reached only from here.

Written against waitress 3.0.2 (tests/unit/test_compat.py pins it): on an upgrade, re-read
how a server keeps its channels before moving the pin.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from waitress import wasyncore
from waitress.task import ThreadedTaskDispatcher
from waitress.trigger import trigger


class WaitressChanged(RuntimeError):
    """The installed waitress lacks a name Restock's shutdown relies on."""


def check() -> None:
    """Raise WaitressChanged naming every name the installed waitress no longer has."""
    missing = []
    # `_map` is set per instance: a socketless dispatcher shows whether it still is.
    if not isinstance(getattr(wasyncore.dispatcher(map={}), "_map", None), dict):
        missing.append("wasyncore.dispatcher._map")
    if not callable(getattr(trigger, "pull_trigger", None)):
        missing.append("trigger.pull_trigger")
    if not callable(getattr(ThreadedTaskDispatcher, "shutdown", None)):
        missing.append("ThreadedTaskDispatcher.shutdown")
    if missing:
        version = importlib.metadata.version("waitress")
        raise WaitressChanged(
            f"waitress {version} has no {', '.join(missing)}: "
            "update restock/compat_waitress.py before serving"
        )


def close_every_socket(server: Any) -> None:
    """Close the listener, its channels and the trigger from inside waitress's own loop.

    Waitress has no thread-safe stop: `server.close()` from another thread closes a socket
    its loop may be in select() on. An empty socket map is how that loop ends.
    """
    server.trigger.pull_trigger(lambda: [d.close() for d in list(server._map.values())])
