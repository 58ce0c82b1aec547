"""Per-device OSCORE (RFC 8613): security contexts kept in the database, and the site that
unprotects requests with them.

Every hub process may serve every device: a request's sequence number is struck out in the
database (one INSERT that fails on a replay, device_hub/oscore_store.py) before the request
reaches a resource, and the hub's own sequence numbers are reserved in chunks (Appendix
B.1.1), each process its own. As nothing about the replay window lives only in memory, a hub
killed at any moment comes back with its window intact: there is nothing for Echo (Appendix
B.1.2) to recover.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiocoap import CON, Message
from aiocoap.numbers.codes import Code

from device_hub.compat_aiocoap import (
    MAX_SEQNO,
    ContextUnavailable,
    DecodeError,
    OscoreContextBase,
    ProtectionInvalid,
    ReplayError,
    new_replay_window,
    oscore_kid,
    protected_remote,
    render_protected,
    security_context_of,
)
from device_hub.oscore_store import (
    REPLAY_WINDOW,
    ContextRecord,
    ContextStore,
    StrikeBatcher,
    token_live,
)

log = logging.getLogger("restock.hub.oscore")

# Appendix B.1.1: the hub's own sequence numbers are reserved this many at a time, doubling
# up to the limit, so a busy context writes rarely and a crash skips few numbers.
SEQ_CHUNK_START = 16
SEQ_CHUNK_LIMIT = 4096
# Contexts held per process; a miss costs one read, so an evicted device only pays that.
MAX_CACHED = 100_000


@dataclass(frozen=True)
class DeviceClaims:
    """What a protected request proves: the token its context was made from."""

    context_id: int
    token_digest: str


class DeviceSideContext(OscoreContextBase):
    """A device's own context (the simulator's): all in memory, none of it ever written.

    A device that restarts posts its token to /authz-info again and gets a fresh context,
    so it never needs to keep sequence numbers across power cycles.
    """

    def __init__(self, secret: bytes, salt: bytes, sender_id: bytes, recipient_id: bytes) -> None:
        self.sender_id = sender_id
        self.recipient_id = recipient_id
        self.id_context = None
        self.derive_keys(salt, secret)
        self.authenticated_claims = []
        self.recipient_replay_window = new_replay_window(REPLAY_WINDOW)
        self.sender_sequence_number = 0

    def new_sequence_number(self) -> int:
        """The next number; a context is replaced long before they run out."""
        number = self.sender_sequence_number
        if number >= MAX_SEQNO:
            raise ContextUnavailable("sequence numbers exhausted")
        self.sender_sequence_number += 1
        return number


def token_digest_of(request: Message) -> str | None:
    """The hash of the token behind the context that protected `request` (None: plain)."""
    context = security_context_of(request.remote)
    if isinstance(context, DeviceContext):
        return context.claims.token_digest
    return None


class _StrikeLater:
    """The replay window aiocoap consults: it remembers the number to strike in the database.

    The database decides (ContextStore.strike); this object only rejects what this process
    already knows is old, so a replay costs no round trip when it comes back here.
    """

    def __init__(self) -> None:
        self.floor = 0
        self.struck: set[int] = set()
        self.pending: int | None = None

    def is_initialized(self) -> bool:
        return True

    def is_valid(self, number: int) -> bool:
        return number >= self.floor and number not in self.struck

    def strike_out(self, number: int) -> None:
        self.pending = number

    def remember(self, number: int) -> None:
        self.struck.add(number)
        if number - REPLAY_WINDOW > self.floor:
            self.floor = number - REPLAY_WINDOW
            self.struck = {seen for seen in self.struck if seen >= self.floor}


class DeviceContext(OscoreContextBase):
    """One device's OSCORE context (hub side), its state in the database."""

    def __init__(self, record: ContextRecord, reserve: Callable[[int, int], int]) -> None:
        self.record = record
        self.sender_id = record.sender_id
        self.recipient_id = record.recipient_id
        self.id_context = record.id_context
        self.derive_keys(record.master_salt, record.master_secret)
        # Per instance: the base class's default is one list shared by every context.
        self.authenticated_claims = [DeviceClaims(record.id, record.token_digest)]
        self.recipient_replay_window = _StrikeLater()
        self._reserve = reserve
        self._chunk = SEQ_CHUNK_START
        self.sender_sequence_number = 0
        self._reserved_to = 0

    @property
    def claims(self) -> DeviceClaims:
        """Who this context speaks for."""
        claims: DeviceClaims = self.authenticated_claims[0]
        return claims

    def new_sequence_number(self) -> int:
        """The next of this process's reserved numbers; a new chunk when they run out."""
        if self.sender_sequence_number >= self._reserved_to:
            start = self._reserve(self.record.id, self._chunk)
            self.sender_sequence_number = start
            self._reserved_to = start + self._chunk
            self._chunk = min(self._chunk * 2, SEQ_CHUNK_LIMIT)
        number = self.sender_sequence_number
        if number >= MAX_SEQNO:
            raise ContextUnavailable("sequence numbers exhausted")
        self.sender_sequence_number += 1
        return number

    def take_pending(self) -> int | None:
        """The request sequence number the last unprotect wants struck out."""
        window = self.recipient_replay_window
        number, window.pending = window.pending, None
        return number


# One statement: the number goes in only if it is new, above the floor, and the context's
# token still stands (not revoked, not expired, its link active), whichever process asks.
class ContextIndex:
    """This process's contexts by kid: a dict lookup per request, a database read on a miss."""

    def __init__(self, store: ContextStore) -> None:
        self.store = store
        self.by_kid: dict[bytes, DeviceContext] = {}

    def cached(self, kid: bytes) -> DeviceContext | None:
        """The context for `kid` if this process holds it."""
        return self.by_kid.get(kid)

    def load(self, kid: bytes) -> DeviceContext | None:
        """Read the context for `kid` from the database (blocking) and hold it."""
        record = self.store.load(kid)
        if record is None:
            return None
        context = DeviceContext(record, self.store.reserve)
        if len(self.by_kid) >= MAX_CACHED:
            self.by_kid.pop(next(iter(self.by_kid)))
        self.by_kid[kid] = context
        return context

    def forget(self, kid: bytes) -> None:
        """Drop a context this process found revoked or replaced."""
        self.by_kid.pop(kid, None)


def _plain_answer(code: Code, text_: str = "") -> Message:
    # Unprotected refusals say little: the sender is not known yet (amplification bound).
    return Message(code=code, payload=text_.encode(), max_age=0)


class OscoreSite:
    """The hub's site behind OSCORE: protected requests are unprotected, struck out in the
    database and handed on with the context as their remote; plain ones pass as they are
    (each resource decides whether it takes them)."""

    def __init__(
        self,
        inner: Any,
        index: ContextIndex,
        run: Callable[..., Awaitable[Any]],
        admit: Callable[[Message], None] = lambda request: None,
    ) -> None:
        self.inner = inner
        self.index = index
        self.run = run
        self.admit = admit
        self.strikes = StrikeBatcher(index.store)

    def get_resources_as_linkheader(self) -> Any:
        """The inner site's listing."""
        return self.inner.get_resources_as_linkheader()

    async def needs_blockwise_assembly(self, request: Message) -> bool:
        """Block-wise happens inside the protection (outer block-wise is not supported)."""
        return False

    async def render(self, request: Message) -> Message:
        """Unused: the site renders to pipes."""
        raise NotImplementedError

    async def render_to_pipe(self, pipe: Any) -> None:
        """Unprotect, strike, render inside, protect each answer."""
        request = pipe.request
        ids = oscore_kid(request)
        if ids is None:
            await self.inner.render_to_pipe(pipe)
            return
        answer = await self._render_protected(pipe, request, ids)
        # A refused NON request gets no answer, as RFC 8613 §8.2 lets a server do.
        if answer is not None and request.mtype == CON:
            pipe.add_response(answer, is_last=True)

    async def _render_protected(
        self, pipe: Any, request: Message, ids: tuple[bytes | None, bytes | None]
    ) -> Message | None:
        if request.code not in (Code.POST, Code.FETCH):
            return _plain_answer(Code.METHOD_NOT_ALLOWED)
        kid, _kid_context = ids
        if kid is None:
            return _plain_answer(Code.UNAUTHORIZED, "no kid")
        context = self.index.cached(kid)
        if context is None:
            try:
                # A kid this process does not hold costs a read: under the address's limit.
                self.admit(request)
            except Exception:
                return _plain_answer(Code.TOO_MANY_REQUESTS)
            context = await self.run(self.index.load, kid)
        if context is None:
            return _plain_answer(Code.UNAUTHORIZED, "unknown context")
        try:
            plain, request_id = context.unprotect(request)
        except ReplayError:
            context.take_pending()
            return _plain_answer(Code.UNAUTHORIZED, "replay")
        except DecodeError:
            return _plain_answer(Code.BAD_OPTION)
        except ProtectionInvalid:
            context.take_pending()
            return _plain_answer(Code.BAD_REQUEST, "decryption failed")
        seq = context.take_pending()
        if seq is not None:
            fresh = await self.strikes.strike(context.record.id, kid, seq)
            if not fresh:
                # Replayed (here or in another process), or the context's token ended.
                if not await self.run(token_live, self.index.store.db, kid):
                    self.index.forget(kid)
                    return _plain_answer(Code.UNAUTHORIZED, "revoked")
                return _plain_answer(Code.UNAUTHORIZED, "replay")
            context.recipient_replay_window.remember(seq)
        plain.remote = protected_remote(context, request.remote)
        await render_protected(self.inner, context, plain, request_id, pipe, log)
        return None
