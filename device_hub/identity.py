"""Who is this device? One replaceable step: today a bearer token in the payload.

Per-device OSCORE contexts (RFC 8613) will replace it: the request's security context
will name the device, and nothing else in the hub changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from auth.principal import InvalidToken, Principal
from auth.tokens import verify_access_token, verify_access_tokens
from orders.db import Database


class Identify(Protocol):
    """Turns a request body into the device it comes from (blocking: run it off the loop)."""

    def __call__(self, body: dict[str, Any], scope: str) -> Principal: ...

    def many(
        self, conn: Connection, bodies: Sequence[dict[str, Any]], scope: str, now: datetime
    ) -> list[Principal | InvalidToken]:
        """The devices of many bodies at once, on `conn` (the press batch's transaction)."""
        ...


class BearerInPayload:
    """The payload's `at` is an access token issued through the device flow."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, body: dict[str, Any], scope: str) -> Principal:
        """The device behind `body["at"]`, or InvalidToken."""
        return _device(verify_access_token(self.db, _token(body), scope))

    def many(
        self, conn: Connection, bodies: Sequence[dict[str, Any]], scope: str, now: datetime
    ) -> list[Principal | InvalidToken]:
        """Every body's device (or why not), with one token query for them all."""
        tokens: list[str | InvalidToken] = []
        for body in bodies:
            try:
                tokens.append(_token(body))
            except InvalidToken as refused:
                tokens.append(refused)
        wellformed = [token for token in tokens if isinstance(token, str)]
        verdicts = iter(verify_access_tokens(conn, wellformed, scope, now=now))
        answers: list[Principal | InvalidToken] = []
        for token in tokens:
            verdict = token if isinstance(token, InvalidToken) else next(verdicts)
            if isinstance(verdict, Principal) and not _is_device(verdict):
                verdict = InvalidToken("invalid_token", "not a device token")
            answers.append(verdict)
        return answers


def _token(body: dict[str, Any]) -> str:
    token = body.get("at")
    if not isinstance(token, str):
        raise InvalidToken("invalid_token", "at must be the device's access token")
    return token


def _is_device(principal: Principal) -> bool:
    return principal.kind == "device" and principal.device_id is not None


def _device(principal: Principal) -> Principal:
    if not _is_device(principal):
        raise InvalidToken("invalid_token", "not a device token")
    return principal
