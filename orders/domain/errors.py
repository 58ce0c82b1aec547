"""Domain errors: values with names. Adapters map `reason` to HTTP, CoAP and speech."""

from __future__ import annotations

REFUSAL_REASONS = ("paused", "spending_cap", "out_of_stock", "unlinked", "needs_address")


class DomainError(Exception):
    """Base of every error the domain raises on purpose; `reason` is machine-readable."""

    reason: str = "error"

    def __init__(self, reason: str | None = None, detail: str = "") -> None:
        if reason is not None:
            self.reason = reason
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class OrderRefused(DomainError):
    """The order was refused for a reason the shopper controls (CONTRACT reason words)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REFUSAL_REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(reason, detail)


class InvalidRequest(DomainError):
    """The request itself is wrong (unknown SKU, bad quantity…); nothing was changed."""

    reason = "invalid_request"


class NotFound(DomainError):
    """No such row visible to the caller (another tenant's rows are not found either)."""

    reason = "not_found"


class NotAllowed(DomainError):
    """The change is not allowed now (cancel window closed, wrong status…)."""

    reason = "not_allowed"
