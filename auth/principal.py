"""Who is calling: the result of checking an access token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SCOPES = ("orders:place", "orders:read", "devices:telemetry", "supplies:read", "merchant:admin")
DEVICE_SCOPES = "orders:place orders:read devices:telemetry"
SHOPPER_SCOPES = "orders:place orders:read supplies:read"
MERCHANT_SCOPES = "merchant:admin orders:read"


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
