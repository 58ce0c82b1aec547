"""Who is this device? One replaceable step: today a bearer token in the payload.

Per-device OSCORE contexts (RFC 8613) will replace it: the request's security context
will name the device, and nothing else in the hub changes.
"""

from __future__ import annotations

from typing import Any, Protocol

from auth.principal import InvalidToken, Principal
from auth.tokens import verify_access_token
from orders.db import Database


class Identify(Protocol):
    """Turns a request body into the device it comes from (blocking: run it off the loop)."""

    def __call__(self, body: dict[str, Any], scope: str) -> Principal: ...


class BearerInPayload:
    """The payload's `at` is an access token issued through the device flow."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, body: dict[str, Any], scope: str) -> Principal:
        """The device behind `body["at"]`, or InvalidToken."""
        token = body.get("at")
        if not isinstance(token, str):
            raise InvalidToken("invalid_token", "at must be the device's access token")
        principal = verify_access_token(self.db, token, scope)
        if principal.kind != "device" or principal.device_id is None:
            raise InvalidToken("invalid_token", "not a device token")
        return principal
