"""Domain errors → CoAP answers, in one table (STYLE.md §7)."""

from __future__ import annotations

from typing import Any

from aiocoap.numbers.codes import Code

from auth.ace import AuthzInfoError
from auth.device_flow import DeviceFlowError
from auth.principal import InvalidToken
from device_hub.codec import PayloadError
from orders.domain.errors import DomainError, InvalidRequest, NotAllowed, NotFound, OrderRefused

# Keep diagnostics short: they travel in one small datagram to a constrained device.
MAX_DETAIL = 120


class RateLimited(Exception):
    """Too many requests from one device or address; `retry_after` seconds until the next."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after} s")


class ShuttingDown(RateLimited):
    """The hub is stopping: it finishes what it acknowledged and takes no new press."""


# Domain refusals a device hears as a CONTRACT refusal word: 4.03 {error: refused, reason}.
REFUSED_AS: dict[str, str] = {"cancel_window_closed": "too_late"}

# (exception type, CoAP code); the first match wins.
CODE_FOR: list[tuple[type[Exception], Code]] = [
    (InvalidToken, Code.UNAUTHORIZED),  # 4.01 {error: invalid_token}
    (OrderRefused, Code.FORBIDDEN),  # 4.03 {error: refused, reason}
    (NotFound, Code.NOT_FOUND),  # 4.04
    (ShuttingDown, Code.SERVICE_UNAVAILABLE),  # 5.03 + Max-Age: try again (another hub)
    (RateLimited, Code.TOO_MANY_REQUESTS),  # 4.29 + Max-Age
    (NotAllowed, Code.CONFLICT),  # 4.09
    (InvalidRequest, Code.BAD_REQUEST),  # 4.00
    (DeviceFlowError, Code.BAD_REQUEST),  # 4.00 {error} with the RFC 8628 words
    (AuthzInfoError, Code.BAD_REQUEST),  # 4.00 {error: invalid_request} (RFC 9203 §4.1)
    (PayloadError, Code.BAD_REQUEST),  # 4.00 (4.15 for an unknown content-format)
    (DomainError, Code.BAD_REQUEST),
]


def error_answer(exc: Exception) -> tuple[Code, dict[str, Any]] | None:
    """The code and body for `exc`, or None when it is not one of ours (a bug: 5.00)."""
    if isinstance(exc, NotAllowed) and exc.reason in REFUSED_AS:
        return Code.FORBIDDEN, {"error": "refused", "reason": REFUSED_AS[exc.reason]}
    code = next((code for kind, code in CODE_FOR if isinstance(exc, kind)), None)
    if code is None:
        return None
    if isinstance(exc, PayloadError):
        return exc.code, {"error": "bad_payload", "detail": exc.detail[:MAX_DETAIL]}
    if isinstance(exc, InvalidToken):
        # 4.01 is about the token; a token lacking a scope is the same story to a device.
        return code, {"error": "invalid_token", "detail": exc.error}
    if isinstance(exc, OrderRefused):
        return code, {"error": "refused", "reason": exc.reason}
    if isinstance(exc, (DeviceFlowError, AuthzInfoError)):
        return code, {"error": exc.error}
    if isinstance(exc, ShuttingDown):
        return code, {"error": "unavailable", "retry_after": exc.retry_after}
    if isinstance(exc, RateLimited):
        return code, {"error": "rate_limited", "retry_after": exc.retry_after}
    if isinstance(exc, DomainError):
        return code, {"error": exc.reason, "detail": exc.detail[:MAX_DETAIL]}
    return code, {"error": "error"}  # pragma: no cover - every listed type is handled above
