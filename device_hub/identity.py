"""Who is this device? One replaceable step: today a bearer token in the payload.

Per-device OSCORE contexts (RFC 8613) will replace it: the request's security context
will name the device, and nothing else in the hub changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from auth.principal import InvalidToken, Principal
from auth.tokens import TokenCheck, verify_access_token
from orders.services.presses import DeviceIds, Read
from orders.store.db import Database


class Identification(Protocol):
    """Who many bodies come from, decided from rows read in the press batch's first flight."""

    @property
    def reads(self) -> Sequence[Read]:
        """What to read (sent with the batch's own reads)."""
        ...

    @property
    def devices(self) -> DeviceIds:
        """The device ids `reads` may identify, for the batch's reads of the same flight."""
        ...

    def principals(
        self, rows: Sequence[list[Any]], scope: str, now: datetime
    ) -> list[Principal | InvalidToken]:
        """Every body's device (or why not), from the rows of `reads`, in body order."""
        ...


class Identify(Protocol):
    """Turns a request body into the device it comes from (blocking: run it off the loop)."""

    def __call__(self, body: dict[str, Any], scope: str) -> Principal: ...

    def many(self, bodies: Sequence[dict[str, Any]]) -> Identification:
        """The devices of many bodies, read in the press batch's transaction."""
        ...


class BearerInPayload:
    """The payload's `at` is an access token issued through the device flow."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, body: dict[str, Any], scope: str) -> Principal:
        """The device behind `body["at"]`, or InvalidToken."""
        return _device(verify_access_token(self.db, _token(body), scope))

    def many(self, bodies: Sequence[dict[str, Any]]) -> Identification:
        """Every body's token, checked with one token query for them all."""
        return _Bearers(bodies)


class _Bearers:
    def __init__(self, bodies: Sequence[dict[str, Any]]) -> None:
        self.tokens: list[str | InvalidToken] = []
        for body in bodies:
            try:
                self.tokens.append(_token(body))
            except InvalidToken as refused:
                self.tokens.append(refused)
        self.check = TokenCheck([token for token in self.tokens if isinstance(token, str)])

    @property
    def reads(self) -> Sequence[Read]:
        return [(self.check.query, self.check.params)]

    @property
    def devices(self) -> DeviceIds:
        return DeviceIds(self.check.device_ids, self.check.params)

    def principals(
        self, rows: Sequence[list[Any]], scope: str, now: datetime
    ) -> list[Principal | InvalidToken]:
        (found,) = rows
        verdicts = iter(self.check.verdicts(found, scope, now))
        answers: list[Principal | InvalidToken] = []
        for token in self.tokens:
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
