"""The psycopg behaviour the store relies on beyond the DB-API, reached only from here.

Written against psycopg 3.3.9 (tests/unit/test_compat.py pins it): on an upgrade, re-read
pipeline mode and list adaptation in the new psycopg before moving the pin.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import psycopg
from psycopg.types import array as psycopg_arrays

# (owner, name) of what flights.py and the engine set-up use beyond the DB-API.
HOOKS: tuple[tuple[Any, str], ...] = (
    (psycopg.Connection, "pipeline"),  # flights: many statements, one round trip
    (psycopg.Connection, "adapters"),
    (psycopg_arrays, "ListBinaryDumper"),
)


class PsycopgChanged(RuntimeError):
    """The installed psycopg lacks a name the store relies on."""


def check() -> None:
    """Raise PsycopgChanged naming every name the installed psycopg no longer has."""
    missing = [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for owner, name in HOOKS
        if not hasattr(owner, name)
    ]
    if missing:
        version = importlib.metadata.version("psycopg")
        raise PsycopgChanged(
            f"psycopg {version} has no {', '.join(missing)}: "
            "update orders/store/compat_psycopg.py before serving"
        )


def send_lists_in_binary(connection: psycopg.Connection[Any]) -> None:
    """Send list parameters as binary arrays: the text dumper quotes each element in Python."""
    # psycopg's own dumper rather than a hand-made one: bench/README.md holds the figures.
    # Sharp edge: for `%s`, psycopg uses the dumper registered last for the type.
    connection.adapters.register_dumper(list, psycopg_arrays.ListBinaryDumper)
