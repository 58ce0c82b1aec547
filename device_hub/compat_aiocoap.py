"""Every private aiocoap name the hub relies on, reached only from here; `check()` at start.

Written against aiocoap 0.4.17 (tests/unit/test_compat.py pins it): on an upgrade, re-read
each name in HOOKS in the new aiocoap before moving the pin.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

from aiocoap import INTERNAL_SERVER_ERROR, Context, Message
from aiocoap import oscore as aiocoap_oscore
from aiocoap import pipe as aiocoap_pipe
from aiocoap.messagemanager import MessageManager
from aiocoap.resource import PathCapable, Site
from aiocoap.transports.oscore import OSCOREAddress

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
    # OSCORE (device_hub/oscore.py): the context base classes call these on their subclass,
    # and the replay window object is their (unstable) interface for strike-out.
    (aiocoap_oscore.CanProtect, "protect"),
    (aiocoap_oscore.CanProtect, "new_sequence_number"),
    (aiocoap_oscore.CanUnprotect, "unprotect"),
    (aiocoap_oscore.CanUnprotect, "_extract_encrypted0"),
    (aiocoap_oscore.SecurityContextUtils, "derive_keys"),
    (aiocoap_oscore.ReplayWindow, "is_initialized"),
    (aiocoap_oscore.ReplayWindow, "is_valid"),
    (aiocoap_oscore.ReplayWindow, "strike_out"),
    (aiocoap_oscore, "verify_start"),
    (aiocoap_pipe, "IterablePipe"),
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


class OscoreContextBase(
    aiocoap_oscore.CanProtect, aiocoap_oscore.CanUnprotect, aiocoap_oscore.SecurityContextUtils
):  # type: ignore[misc]
    """aiocoap's OSCORE context machinery (AEAD, AAD, nonces, option compression).

    A subclass supplies keys (`derive_keys`), `new_sequence_number` and a
    `recipient_replay_window` with `is_initialized`, `is_valid` and `strike_out`.
    Sharp edge: `BaseSecurityContext.authenticated_claims` is one list shared by every
    context; set it per instance.
    """

    alg_aead = aiocoap_oscore.algorithms["AES-CCM-16-64-128"]
    hashfun = aiocoap_oscore.hashfunctions["sha256"]
    echo_recovery: bytes | None = None

    def post_seqnoincrease(self) -> None:
        """Unused: subclasses reserve sequence numbers in `new_sequence_number`."""


def new_replay_window(size: int) -> Any:
    """aiocoap's in-memory replay window, empty (a client's window for notifications)."""
    window = aiocoap_oscore.ReplayWindow(size, lambda: None)
    window.initialize_empty()
    return window


ProtectionInvalid = aiocoap_oscore.ProtectionInvalid
ReplayError = aiocoap_oscore.ReplayError
DecodeError = aiocoap_oscore.DecodeError
NotAProtectedMessage = aiocoap_oscore.NotAProtectedMessage
ContextUnavailable = aiocoap_oscore.ContextUnavailable
COSE_KID = aiocoap_oscore.COSE_KID
COSE_KID_CONTEXT = aiocoap_oscore.COSE_KID_CONTEXT
COSE_PIV = aiocoap_oscore.COSE_PIV
MAX_SEQNO = aiocoap_oscore.MAX_SEQNO


def oscore_kid(request: Message) -> tuple[bytes | None, bytes | None] | None:
    """(kid, kid context) of a protected request, or None when it carries no OSCORE option."""
    try:
        bag = aiocoap_oscore.verify_start(request)
    except aiocoap_oscore.NotAProtectedMessage:
        return None
    return bag.get(COSE_KID), bag.get(COSE_KID_CONTEXT)


def protected_remote(context: Any, remote: Any) -> Any:
    """The remote an unprotected request carries: its claims name the security context."""
    return OSCOREAddress(context, remote)


def security_context_of(remote: Any) -> Any:
    """The security context that protected a request, or None for a plain one."""
    if isinstance(remote, OSCOREAddress):
        return remote.security_context
    return None


def underlying_remote(remote: Any) -> Any:
    """The network address under a protected request's remote (itself for a plain one)."""
    if isinstance(remote, OSCOREAddress):
        return remote.underlying_address
    return remote


async def render_protected(
    inner_site: Any, context: Any, plain: Message, request_id: Any, pipe: Any, log: Any
) -> None:
    """Render `plain` on `inner_site` and send each answer protected with `context`.

    Observe notifications get the context's own fresh sequence numbers (RFC 8613 §4.1.3.5);
    a renderer's exception becomes a protected 5.00, never a plain answer.
    """
    inner = aiocoap_pipe.IterablePipe(plain)
    aiocoap_pipe.run_driving_pipe(
        aiocoap_pipe.error_to_message(inner, log),
        inner_site.render_to_pipe(inner),
        name="coap-render-oscore",
    )
    async for event in inner:
        if event.exception is not None:
            log.warning("protected renderer failed: %r", event.exception)
            message, is_last = Message(code=INTERNAL_SERVER_ERROR), True
        else:
            message, is_last = event.message, event.is_last
        if not is_last:
            message.opt.observe = 0
        protected, _ = context.protect(message, request_id)
        if message.opt.observe is not None:
            protected.opt.observe = context.sender_sequence_number & 0xFFFFFF
        pipe.add_response(protected, is_last=is_last)
        if is_last:
            break
