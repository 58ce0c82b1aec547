"""Every private aiocoap name the hub relies on, reached only from here; `check()` at start.

Written against aiocoap 0.4.17 (tests/unit/test_compat.py pins it): on an upgrade, re-read
each name in HOOKS in the new aiocoap before moving the pin.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

from aiocoap import Context, Message
from aiocoap import pipe as aiocoap_pipe
from aiocoap.messagemanager import MessageManager
from aiocoap.resource import PathCapable, Site

# (owner, name) of every private name used below, with why.
HOOKS: tuple[tuple[Any, str], ...] = (
    # Duplicate detection is unbounded (aiocoap issue #183): dedup.py replaces these two.
    (MessageManager, "_deduplicate_message"),
    (MessageManager, "_store_response_for_duplicates"),
    # Re-sends a stored answer's bytes, as aiocoap's own duplicate handling does.
    (MessageManager, "_send_via_transport"),
    # render_to_pipe is overridden to drop its per-request task name (HubContext).
    (Context, "_render_to_pipe"),
    (aiocoap_pipe, "run_driving_pipe"),
    (aiocoap_pipe, "error_to_message"),
    # Leaf resources skip the per-request message copy (HubSite).
    (Site, "_find_child_and_pathstripped_message"),
    # Block1 reassembly with bounds (blockwise.py) appends blocks as aiocoap's spool does.
    (Message, "_append_request_block"),
    # Discovery cuts its own Block2 blocks, sized to the amplification bound (resources.py).
    (Message, "_extract_block"),
)


class AiocoapChanged(RuntimeError):
    """The installed aiocoap lacks a private name the hub relies on."""


def check() -> None:
    """Raise AiocoapChanged naming every hooked name the installed aiocoap no longer has."""
    missing = [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for owner, name in HOOKS
        if not callable(getattr(owner, name, None))
    ]
    if missing:
        version = importlib.metadata.version("aiocoap")
        raise AiocoapChanged(
            f"aiocoap {version} has no {', '.join(missing)}: "
            "update device_hub/compat_aiocoap.py before serving"
        )


class HubContext(Context):  # type: ignore[misc]
    """aiocoap's server context, its rendering tasks named once rather than per request.

    Sharp edge: `Context.render_to_pipe` formats the whole request into each task's name.
    """

    def render_to_pipe(self, pipe: Any) -> None:
        """As Context.render_to_pipe, with a constant task name."""
        aiocoap_pipe.run_driving_pipe(
            aiocoap_pipe.error_to_message(pipe, self.log),
            self._render_to_pipe(pipe),
            name="coap-render",
        )


class HubSite(Site):  # type: ignore[misc]
    """aiocoap's Site, handing plain leaf resources the request as it came.

    Sharp edge: `Site._find_child_and_pathstripped_message` deep-copies every request and
    formats its full URI, which a leaf (no sub-paths, not PathCapable) never reads.
    """

    def __init__(self) -> None:
        super().__init__()
        self._leaves: dict[tuple[str, ...], Any] = {}

    def add_resource(self, path: Any, resource: Any) -> None:
        """As Site.add_resource; remembers plain leaves for the direct lookup."""
        super().add_resource(path, resource)
        if not isinstance(resource, (PathCapable, Site)):
            self._leaves[tuple(path)] = resource

    def _find_child_and_pathstripped_message(self, request: Message) -> tuple[Any, Message]:
        leaf = self._leaves.get(tuple(request.opt.uri_path))
        if leaf is not None:
            return leaf, request
        return super()._find_child_and_pathstripped_message(request)  # type: ignore[no-any-return]


def append_request_block(upload: Message, block: Message) -> None:
    """Append a Block1 block to the upload so far; ValueError on a gap or an overlap."""
    upload._append_request_block(block)


def extract_block(full: Message, number: int, size_exp: int) -> Message:
    """Block `number` of size 16 << `size_exp` of a whole answer; BadRequest past the end."""
    block: Message = full._extract_block(number, size_exp, 1024)
    return block


def message_managers(context: Context) -> list[MessageManager]:
    """The UDP message managers under a server context (one per bound transport)."""
    managers = []
    for token_manager in context.request_interfaces:
        manager = getattr(token_manager, "token_interface", None)
        if isinstance(manager, MessageManager):
            managers.append(manager)
    return managers


def replace_duplicate_detection(
    manager: MessageManager,
    deduplicate: Callable[[Message], bool],
    store_response: Callable[[Message], None],
) -> None:
    """Make `manager` ask `deduplicate` about each request and `store_response` each answer."""
    check()  # replacing a method aiocoap no longer calls would leave its memory unbounded
    manager._deduplicate_message = deduplicate
    manager._store_response_for_duplicates = store_response
    manager._recent_messages = {}  # aiocoap's own memory, unused from now on


def send_raw(manager: MessageManager, message: Any) -> None:
    """Send `message` (anything with `remote` and `encode()`) straight to the transport."""
    manager._send_via_transport(message)


def bound_port(context: Context) -> int | None:
    """The UDP port the server context listens on (aiocoap has no accessor; needed for port 0)."""
    for manager in message_managers(context):
        transport = getattr(getattr(manager, "message_interface", None), "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            return int(sock.getsockname()[1])
    return None
