"""Payloads in and out: CBOR maps (content-format 60) or JSON (50); replies match requests."""

from __future__ import annotations

import json
from typing import Any

import cbor2
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.contentformat import ContentFormat

CBOR = ContentFormat.CBOR
JSON = ContentFormat.JSON
MAX_DEPTH = 8  # devices send flat maps; deep nesting is an attack on the decoder
# Tags a device may send: bignums (2, 3), so an out-of-range seq reads as a bad seq. Every
# other tag is refused, above all 28/29 (shared references: a small payload becomes a DAG
# whose paths are exponential) and 256/25 (string references).
ALLOWED_TAGS = frozenset({2, 3})
_INDEFINITE = -1


class PayloadError(Exception):
    """The payload can't be read: the hub answers 4.00 (or 4.15) with a short diagnostic."""

    def __init__(self, detail: str, code: Code = Code.BAD_REQUEST) -> None:
        self.detail = detail
        self.code = code
        super().__init__(detail)


def request_format(request: Message) -> ContentFormat:
    """The format a request is written in (or asks for); unknown formats are refused."""
    fmt = request.opt.content_format
    if fmt is None:
        fmt = request.opt.accept
    if fmt is None:
        # Unlabelled: a JSON object starts with `{`, which no CBOR map's first byte can be.
        return JSON if request.payload[:1] == b"{" else CBOR
    if fmt not in (CBOR, JSON):
        raise PayloadError(
            "use content-format 60 (CBOR) or 50 (JSON)", Code.UNSUPPORTED_CONTENT_FORMAT
        )
    return ContentFormat(fmt)


def reply_format(request: Message) -> ContentFormat:
    """The format to answer in; never fails (a refusal must be readable too)."""
    try:
        return request_format(request)
    except PayloadError:
        return CBOR


def decode(payload: bytes, fmt: ContentFormat) -> dict[str, Any]:
    """A request body as a map, or PayloadError."""
    if not payload:
        raise PayloadError("empty payload")
    try:
        if fmt == JSON:
            body = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
        else:
            # Sharp edge: cbor2 6 resolves tags 28/29 and 256 inside its C decoder without
            # calling tag_hook, so refusals must come before it: check_cbor walks the raw
            # bytes first (and refuses trailing bytes, which cbor2.loads would ignore).
            check_cbor(payload)
            body = cbor2.loads(payload)
    except PayloadError:
        raise
    except Exception:
        # Sharp edge: cbor2 6's CBORDecodeError is not a ValueError, and tags decode through
        # hooks (datetime, Decimal, regex…) that raise their own errors on hostile input.
        # Whatever fails while reading untrusted bytes is the sender's bad payload.
        raise PayloadError("payload is not valid " + ("JSON" if fmt == JSON else "CBOR")) from None
    if not isinstance(body, dict):
        raise PayloadError("payload must be a map")
    if _depth(body) > MAX_DEPTH:
        raise PayloadError("payload nests too deeply")
    if not _encodable(body):
        # Sharp edge: JSON escapes like \ud800 decode to lone surrogates, which no database
        # driver can encode; refuse them here rather than fail deep in a query.
        raise PayloadError("text must be valid Unicode")
    return body


def check_cbor(data: bytes) -> None:
    """Walk one CBOR item's headers in O(len(data)); PayloadError unless it is safe to decode.

    Refused: tags outside ALLOWED_TAGS, nesting deeper than MAX_DEPTH, declared lengths or
    counts the payload cannot hold, indefinite-length strings, reserved or malformed headers,
    bytes after the item. What passes decodes to a tree no larger than the payload.
    """
    end = len(data)
    pos = 0
    # One entry per open container: items still expected (_INDEFINITE: until a break).
    open_items = [1]
    while open_items:
        if open_items[-1] == 0:
            open_items.pop()
            continue
        if pos >= end:
            raise PayloadError("truncated CBOR")
        initial = data[pos]
        pos += 1
        if initial == 0xFF:  # break: ends the innermost indefinite-length container
            if open_items[-1] != _INDEFINITE:
                raise PayloadError("unexpected CBOR break")
            open_items.pop()
            continue
        if open_items[-1] != _INDEFINITE:
            open_items[-1] -= 1
        major, info = initial >> 5, initial & 0x1F
        if info < 24:
            argument = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > end:
                raise PayloadError("truncated CBOR")
            argument = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        elif info == 31 and major in (4, 5):
            argument = _INDEFINITE
        else:
            raise PayloadError("unsupported CBOR item")
        if major in (2, 3):
            if argument > end - pos:
                raise PayloadError("CBOR string longer than the payload")
            pos += argument
            continue
        if major in (4, 5):
            count = argument if argument == _INDEFINITE or major == 4 else 2 * argument
            if count > end - pos:  # every item takes at least one byte
                raise PayloadError("CBOR container larger than the payload")
        elif major == 6:
            if argument not in ALLOWED_TAGS:
                raise PayloadError(f"CBOR tag {argument} is not accepted")
            count = 1
        else:
            continue  # integers, simple values, floats: no content to walk
        open_items.append(count)
        if len(open_items) - 1 > MAX_DEPTH:
            raise PayloadError("payload nests too deeply")
    if pos != end:
        raise PayloadError("trailing bytes after the CBOR map")


def decode_json_text(payload: bytes) -> Any:
    """Any JSON value (the HTTP twin's SenML pack is an array), with decode()'s checks."""
    if not payload:
        raise PayloadError("empty payload")
    try:
        value = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except PayloadError:
        raise
    except (ValueError, RecursionError):
        raise PayloadError("payload is not valid JSON") from None
    if _depth(value) > MAX_DEPTH:
        raise PayloadError("payload nests too deeply")
    if not _encodable(value):
        raise PayloadError("text must be valid Unicode")
    return value


def encode(body: dict[str, Any], fmt: ContentFormat, code: Code) -> Message:
    """A response message carrying `body` in `fmt`."""
    if fmt == JSON:
        payload = json.dumps(body, separators=(",", ":")).encode()
    else:
        payload = cbor2.dumps(body)
    return Message(code=code, payload=payload, content_format=fmt)


def _no_constant(name: str) -> float:
    # Python's json accepts NaN/Infinity, which no JSON text may contain (RFC 8259).
    raise PayloadError(f"{name} is not JSON")


def _depth(value: object, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _encodable(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    return True
