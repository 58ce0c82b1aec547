"""The hub's ingress checks without a socket: the CBOR pre-scan and the amplification bound."""

from __future__ import annotations

import cbor2
import pytest
from aiocoap import CON, GET, POST, Message
from aiocoap.numbers.codes import Code

from device_hub.codec import CBOR, MAX_DEPTH, PayloadError, check_cbor, decode
from device_hub.limits import AMPLIFICATION, wire_size, within_amplification


def shared_reference_dag(width: int, levels: int = 6) -> bytes:
    """{"a": [L0…L5]}, L_i a shared array of `width` references to L_(i-1): width**6 paths.

    Six levels keep it within MAX_DEPTH, so only a walk of every path could refuse it.
    """
    parts = [b"\xd8\x1c" + _array_head(width) + b"\x01" * width]  # 28([1, 1, …])
    for i in range(1, levels):
        ref = b"\xd8\x1d" + cbor2.dumps(i - 1)  # 29(i-1): a reference to shareable i-1
        parts.append(b"\xd8\x1c" + _array_head(width) + ref * width)
    return b"\xa1\x61a" + _array_head(levels) + b"".join(parts)


def _array_head(count: int) -> bytes:
    return bytes([0x80 + count]) if count < 24 else b"\x98" + bytes([count])


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (shared_reference_dag(40), "tag 28"),
        (b"\xa1\x61a\xd8\x1d\x00", "tag 29"),
        (b"\xd9\x01\x00\xa1\x61a\x01", "tag 256"),  # string-reference namespace
        (b"\xa1\x61a\xd8\x19\x00", "tag 25"),  # string reference
        (b"\xa1\x61a\xc1\x1a\x00\x00\x00\x00", "tag 1"),  # a datetime: no device sends one
        (b"\xa1\x61a" + b"\x81" * (MAX_DEPTH + 1) + b"\x01", "nests"),
        (b"\xa1\x61a" + b"\x9f" * (MAX_DEPTH + 1) + b"\xff" * (MAX_DEPTH + 1), "nests"),
        (b"\xa1\x61a\x5a\xff\xff\xff\xff", "longer than the payload"),  # a 4 GiB byte string
        (b"\xa1\x61a\x9b" + b"\xff" * 8, "larger than the payload"),  # 2**64-1 items
        (b"\xbb" + b"\x7f" * 8, "larger than the payload"),  # a map of 2**63 pairs
        (b"\xa1\x61a\x7f\x61b\xff", "unsupported"),  # indefinite-length text
        (b"\xa1\x61a\x1c", "unsupported"),  # reserved additional information
        (b"\xa1\x61a\x01\x00", "trailing"),
        (b"\xa2\x61a\x01\x61b", "truncated"),
        (b"\xa1\x61a\xff", "break"),
    ],
)
def test_the_pre_scan_refuses_what_no_device_sends(payload: bytes, why: str) -> None:
    """Shared and string references, other tags, deep nesting and impossible lengths: refused."""
    with pytest.raises(PayloadError) as refused:
        check_cbor(payload)
    assert why in refused.value.detail
    with pytest.raises(PayloadError):
        decode(payload, CBOR)


def test_a_shared_reference_dag_is_refused_by_decode_before_cbor2_sees_it() -> None:
    """The 200-byte datagram that froze the hub is a plain bad payload now."""
    payload = shared_reference_dag(9)  # 9**6 paths: the datagram
    assert len(payload) < 200
    with pytest.raises(PayloadError, match="tag 28"):
        decode(payload, CBOR)


@pytest.mark.parametrize(
    "body",
    [
        {"at": "x" * 43, "seq": 7, "boot": "b1"},
        {"at": "t", "seq": 2**64},  # a bignum (tag 2): a bad seq, not a bad payload
        {"at": "t", "seq": -(2**70)},  # tag 3
        {"senml": [{-2: "", 0: "pods", 1: "count", 2: 4.5}] * 256},
        {"nested": [[[[[[1]]]]]], "b": b"\x00" * 30, "f": 1.5, "n": None, "t": True},
    ],
)
def test_what_devices_send_passes_the_pre_scan_and_decodes(body: dict[str, object]) -> None:
    """Definite maps, arrays, strings, floats, simple values and bignums decode as before."""
    payload = cbor2.dumps(body)
    check_cbor(payload)
    assert decode(payload, CBOR) == body


def test_indefinite_length_containers_within_the_depth_decode() -> None:
    """Streaming encoders write indefinite maps and arrays: accepted, breaks counted."""
    payload = b"\xbf\x61a\x9f\x01\x02\xff\x61b\x9f\xff\xff"
    check_cbor(payload)
    assert decode(payload, CBOR) == {"a": [1, 2], "b": []}


def test_wire_size_is_the_encoded_datagram_length() -> None:
    """The amplification bound counts what goes on the wire: header, token, options, payload."""
    message = Message(_mtype=CON, _mid=1, _token=b"\x01\x02", code=POST, payload=b"abc")
    message.opt.uri_path = ("link",)
    message.opt.content_format = 60
    assert wire_size(message, message.token) == len(message.encode())
    empty = Message(_mtype=CON, _mid=1, code=GET)
    empty.opt.uri_path = ("press",)
    assert wire_size(empty) == len(empty.encode())


def test_an_answer_over_three_times_the_request_is_out_of_bounds() -> None:
    """within_amplification compares datagrams, the request's token counted on both sides."""
    request = Message(_mtype=CON, _mid=1, code=GET)
    request.opt.uri_path = ("x",)  # 4 + 2 bytes
    small = Message(code=Code.CONTENT, payload=b"x" * (AMPLIFICATION * 6 - 5))
    large = Message(code=Code.CONTENT, payload=b"x" * (AMPLIFICATION * 6 - 4))
    assert within_amplification(request, small)
    assert not within_amplification(request, large)
