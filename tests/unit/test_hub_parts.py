"""The hub's small parts without a socket: payload codec, rate limiter, error table."""

from __future__ import annotations

import cbor2
import pytest
from aiocoap.numbers.codes import Code

from auth.device_flow import DeviceFlowError
from auth.principal import InvalidToken
from device_hub.codec import CBOR, JSON, PayloadError, decode
from device_hub.errors import RateLimited, error_answer
from device_hub.limits import Rate, RateLimiter
from orders.domain.errors import InvalidRequest, NotFound, OrderRefused


def test_cbor_and_json_maps_decode_alike() -> None:
    """The same map in either format."""
    body = {"at": "t", "seq": 1}
    assert decode(cbor2.dumps(body), CBOR) == decode(b'{"at":"t","seq":1}', JSON) == body


@pytest.mark.parametrize(
    ("payload", "fmt"),
    [
        (b"", CBOR),
        (b"\x1f", CBOR),
        (cbor2.dumps({"a": 1}) + b"\x00", CBOR),
        (cbor2.dumps([1]), CBOR),
        (b'{"a": Infinity}', JSON),
        (b"\xff", JSON),
        (b"[" * 100_000, JSON),
        (b"\x81" * 10_000 + b"\x00", CBOR),
        (cbor2.dumps({"a": [[[[[[[[[[1]]]]]]]]]]}), CBOR),
        (b'{"at": "\\ud800", "seq": 1}', JSON),
        (b'{"\\udfff": 1}', JSON),
    ],
)
def test_undecodable_payloads_are_payload_errors(payload: bytes, fmt: object) -> None:
    """Empty, malformed, trailing bytes, non-maps, NaN words, deep nesting: PayloadError."""
    with pytest.raises(PayloadError):
        decode(payload, fmt)  # type: ignore[arg-type]


def test_rate_limiter_allows_a_burst_then_says_when_to_come_back() -> None:
    """Burst of 3 at 0.5/s: the fourth waits 2 s; after 2 s one more is allowed."""
    now = [0.0]
    limiter = RateLimiter(Rate(per_second=0.5, burst=3), clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 2
    assert limiter.take("b") == 0
    now[0] = 2.0
    assert limiter.take("a") == 0


def test_rate_limiter_memory_is_bounded() -> None:
    """A flood of distinct keys keeps at most max_keys buckets."""
    limiter = RateLimiter(Rate(per_second=1, burst=1), max_keys=100)
    for key in range(10_000):
        limiter.take(key)
    assert len(limiter) == 100


@pytest.mark.parametrize(
    ("exc", "code", "body"),
    [
        (InvalidToken("invalid_token"), Code.UNAUTHORIZED, {"error": "invalid_token"}),
        (OrderRefused("paused"), Code.FORBIDDEN, {"error": "refused", "reason": "paused"}),
        (NotFound("not_found"), Code.NOT_FOUND, {"error": "not_found"}),
        (RateLimited(3), Code.TOO_MANY_REQUESTS, {"error": "rate_limited", "retry_after": 3}),
        (InvalidRequest("bad_seq"), Code.BAD_REQUEST, {"error": "bad_seq"}),
        (DeviceFlowError("slow_down"), Code.BAD_REQUEST, {"error": "slow_down"}),
        (PayloadError("x"), Code.BAD_REQUEST, {"error": "bad_payload"}),
    ],
)
def test_error_table_maps_domain_errors_to_coap(
    exc: Exception, code: Code, body: dict[str, object]
) -> None:
    """One table: 4.01, 4.03 + reason, 4.04, 4.29, 4.00 with the contract's words."""
    answer = error_answer(exc)
    assert answer is not None
    assert answer[0] == code
    assert {k: v for k, v in answer[1].items() if k != "detail"} == body


def test_unknown_exceptions_are_not_mapped() -> None:
    """A bug is not dressed up as a 4.xx."""
    assert error_answer(ZeroDivisionError()) is None
