"""Block1 (RFC 7959) reassembly for /telemetry with caps on size and uploads in progress.

aiocoap's own `Block1Spool` keeps every upload for MAX_TRANSMIT_WAIT (93 s) with no limit
on its size or on how many are open, and a block that leaves a gap raises a bare
ValueError, which aiocoap renders as 5.00. This spool bounds both and answers 4.xx.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiocoap import Message
from aiocoap import error as coap_error
from aiocoap.blockwise import ContinueException
from aiocoap.numbers.optionnumbers import OptionNumber

from device_hub.compat_aiocoap import append_request_block

DEFAULT_MAX_UPLOADS = 1000
# Like aiocoap's block key: everything but the block and observe options names an upload.
_BLOCK_OPTIONS = [OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE]
DEFAULT_LIFETIME = 60.0


class TooManyUploads(coap_error.TooManyRequests):
    """Every upload slot is taken: come back later."""


class BoundedBlock1Spool:
    """Assemble Block1 requests; at most `max_uploads` open, none past `max_bytes`."""

    def __init__(
        self,
        max_bytes: int,
        *,
        max_uploads: int = DEFAULT_MAX_UPLOADS,
        lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_uploads = max_uploads
        self.lifetime = lifetime
        self.clock = clock
        self.uploads: OrderedDict[Any, list[Any]] = OrderedDict()  # key -> [expiry, request]

    def __len__(self) -> int:
        return len(self.uploads)

    def feed_and_take(self, request: Message) -> Message:
        """The whole request once its last block is in; else Continue (2.31) or a 4.xx."""
        block1 = request.opt.block1
        if block1 is None:
            return request
        now = self.clock()
        while self.uploads and next(iter(self.uploads.values()))[0] <= now:
            self.uploads.popitem(last=False)
        key = (request.remote, request.code, request.get_cache_key(_BLOCK_OPTIONS))
        if block1.start + len(request.payload) > self.max_bytes:
            self.uploads.pop(key, None)
            raise coap_error.RequestEntityTooLarge()
        if block1.block_number == 0:
            if key not in self.uploads and len(self.uploads) >= self.max_uploads:
                raise TooManyUploads()
            self.uploads[key] = [now + self.lifetime, request]
        else:
            entry = self.uploads.get(key)
            if entry is None:
                raise coap_error.RequestEntityIncomplete()
            try:
                append_request_block(entry[1], request)
            except ValueError:  # a gap or an overlap: start again from block 0
                self.uploads.pop(key, None)
                raise coap_error.RequestEntityIncomplete() from None
            entry[0] = now + self.lifetime
        self.uploads.move_to_end(key)
        if block1.more:
            raise ContinueException(block1)
        return self.uploads.pop(key)[1]
