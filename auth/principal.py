"""Who is calling: the result of checking an access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What a merchant API client may be given, one area each (the integrations page chooses).
MERCHANT_API_SCOPES = (
    "orders:read",
    "orders:write",
    "catalog:read",
    "catalog:write",
    "devices:read",
    "devices:write",
    "webhooks:read",
    "webhooks:write",
)
SCOPES = (
    "orders:place",
    "orders:read",
    "devices:telemetry",
    "supplies:read",
    "merchant:admin",
    *MERCHANT_API_SCOPES[1:],
)
DEVICE_SCOPES = "orders:place orders:read devices:telemetry"
SHOPPER_SCOPES = "orders:place orders:read supplies:read"
# A merchant API client made without a choice may only read orders.
MERCHANT_SCOPES = "orders:read"
SCOPE_TEXT = {
    "orders:place": "Place orders in your name",
    "orders:read": "See your orders and their status",
    "devices:telemetry": "Report supply levels",
    "supplies:read": "Read supply levels of your devices",
    "merchant:admin": "Manage the store",
    "orders:write": "Ship, deliver and cancel orders",
    "catalog:read": "See the catalog",
    "catalog:write": "Change the catalog and stock",
    "devices:read": "See devices and device models",
    "devices:write": "Revoke devices, add device models",
    "webhooks:read": "See webhook endpoints and events",
    "webhooks:write": "Manage webhook endpoints",
}


@dataclass(frozen=True)
class Principal:
    """The caller an access token stands for, and what it may do."""

    kind: Literal["shopper", "device", "merchant"]
    client_id: str
    scopes: frozenset[str]
    shopper_id: int | None = None
    store_id: int | None = None
    device_id: int | None = None
    link_id: int | None = None
    account_id: int | None = None
    token_id: int | None = None
    # A proof-of-possession device token: its device speaks OSCORE, never bearer.
    oscore: bool = False

    def has_scope(self, scope: str) -> bool:
        """True when the token was granted `scope`."""
        return scope in self.scopes


class OAuthError(Exception):
    """A refusal carrying its RFC error word (`invalid_grant`, `slow_down`, …) and a detail."""

    def __init__(self, error: str, detail: str = "") -> None:
        self.error = error
        self.detail = detail
        super().__init__(f"{error}: {detail}" if detail else error)


class InvalidToken(OAuthError):
    """The token is missing, unknown, expired, revoked (`invalid_token`) or too narrow."""

    def __init__(self, error: str = "invalid_token", detail: str = "") -> None:
        # RFC 6750 words: invalid_token | insufficient_scope
        super().__init__(error, detail)
