"""The library compatibility modules: pinned versions, hooks present, a vanished one named."""

from __future__ import annotations

import importlib.metadata

import psycopg
import pytest
from aiocoap.messagemanager import MessageManager
from aiocoap.resource import Site
from sqlalchemy.sql.compiler import SQLCompiler
from waitress import wasyncore

from device_hub import compat_aiocoap
from orders.store import compat_psycopg, compat_sqlalchemy
from restock import compat_waitress
from restock.server import check_library_hooks

PINS = [
    ("aiocoap", "0.4.17", "device_hub/compat_aiocoap.py"),
    ("psycopg", "3.3.9", "orders/store/compat_psycopg.py"),
    ("sqlalchemy", "2.1.9", "orders/store/compat_sqlalchemy.py"),
    ("waitress", "3.0.2", "restock/compat_waitress.py"),
]


@pytest.mark.parametrize(("library", "version", "module"), PINS)
def test_each_library_is_the_version_its_hooks_were_written_for(
    library: str, version: str, module: str
) -> None:
    """An upgrade fails here first, naming the module whose private hooks to re-read."""
    installed = importlib.metadata.version(library)
    assert installed == version, (
        f"{library} is {installed}: re-check the private hooks in {module} when upgrading, "
        "then move this pin"
    )


def test_the_installed_libraries_have_every_hooked_name() -> None:
    """Every compatibility check passes on the pinned versions, as at start-up."""
    compat_aiocoap.check()
    compat_psycopg.check()
    compat_sqlalchemy.check()
    compat_waitress.check()
    check_library_hooks(web=True, hub=True)


def test_a_vanished_aiocoap_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """An aiocoap without the hooked Site method fails the check with the method's name."""
    monkeypatch.delattr(Site, "_find_child_and_pathstripped_message")
    with pytest.raises(compat_aiocoap.AiocoapChanged, match="_find_child_and_pathstripped"):
        compat_aiocoap.check()


def test_a_vanished_psycopg_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A psycopg without pipeline mode fails the check with `Connection.pipeline`."""
    monkeypatch.delattr(psycopg.Connection, "pipeline")
    with pytest.raises(compat_psycopg.PsycopgChanged, match=r"Connection\.pipeline"):
        compat_psycopg.check()


def test_a_vanished_sqlalchemy_name_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SQLAlchemy without a compiler's insert_prefetch fails the check with its name."""
    monkeypatch.delattr(SQLCompiler, "insert_prefetch")
    with pytest.raises(compat_sqlalchemy.SQLAlchemyChanged, match="SQLCompiler.insert_prefetch"):
        compat_sqlalchemy.check()


def test_a_waitress_without_a_socket_map_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A waitress whose dispatchers no longer keep `_map` fails the check with that name."""

    def init_without_map(self: object, sock: object = None, map: object = None) -> None:
        pass

    monkeypatch.setattr(wasyncore.dispatcher, "__init__", init_without_map)
    with pytest.raises(compat_waitress.WaitressChanged, match=r"dispatcher\._map"):
        compat_waitress.check()


def test_serving_refuses_to_start_when_a_hook_vanished(monkeypatch: pytest.MonkeyPatch) -> None:
    """The composition root's start-up check stops the hub role on a changed aiocoap."""
    monkeypatch.delattr(Site, "_find_child_and_pathstripped_message")
    check_library_hooks(web=True, hub=False)
    with pytest.raises(compat_aiocoap.AiocoapChanged):
        check_library_hooks(web=False, hub=True)


def test_duplicate_detection_is_not_replaced_on_a_changed_aiocoap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swapping in bounded memory refuses, rather than leaving aiocoap's own unbounded."""
    monkeypatch.delattr(MessageManager, "_store_response_for_duplicates")
    manager = object.__new__(MessageManager)
    with pytest.raises(compat_aiocoap.AiocoapChanged, match="_store_response_for_duplicates"):
        compat_aiocoap.replace_duplicate_detection(manager, lambda _m: False, lambda _m: None)
