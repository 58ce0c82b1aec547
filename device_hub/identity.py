"""Who is this device? One step: the OSCORE context that protected the request (its
claims name the token the context was made from), else the bearer token in the payload.

A proof-of-possession token (its model speaks OSCORE) is never taken as a bearer token, so
an unprotected request from such a device is refused like a bad token (4.01).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from auth.principal import InvalidToken, Principal
from auth.tokens import Digest, TokenCheck, verify_access_token, verify_token_digest
from orders.services.presses import DeviceIds, Read
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceModel


class _ClaimsKey:
    """The body key under which the hub puts a protected request's claims (no wire key)."""

    def __repr__(self) -> str:
        return "CLAIMS"


CLAIMS = _ClaimsKey()
MUST_USE_OSCORE = "this device must protect its requests with OSCORE"


def with_claims(body: dict[Any, Any], token_digest: str | None) -> dict[Any, Any]:
    """`body` marked as coming under the OSCORE context of the token with this hash."""
    if token_digest is not None:
        body[CLAIMS] = Digest(token_digest)
    return body


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

    def requires_oscore(self, device_id: int) -> bool:
        """Whether the device's model speaks OSCORE (blocking)."""
        ...


class DeviceIdentity:
    """The device behind a request: its OSCORE claims, else the payload's bearer `at`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, body: dict[str, Any], scope: str) -> Principal:
        """The device behind `body`, or InvalidToken."""
        claims = body.get(CLAIMS)  # type: ignore[call-overload]
        if isinstance(claims, Digest):
            now = utcnow()
            principal = self.db.lookup(
                lambda conn: verify_token_digest(conn, claims.hex, scope, now=now)
            )
            return _device(principal, protected=True)
        return _device(verify_access_token(self.db, _token(body), scope), protected=False)

    def many(self, bodies: Sequence[dict[str, Any]]) -> Identification:
        """Every body's token, checked with one token query for them all."""
        return _Bearers(bodies)

    def requires_oscore(self, device_id: int) -> bool:
        """Whether the device's model speaks OSCORE (its unprotected reads are refused)."""
        query = (
            select(DeviceModel.security)
            .join(Device, Device.model_id == DeviceModel.id)
            .where(Device.id == device_id)
        )
        return self.db.lookup(lambda conn: conn.scalar(query)) == "oscore"


# The name this step had when bearer tokens were all there was.
BearerInPayload = DeviceIdentity


class _Bearers:
    def __init__(self, bodies: Sequence[dict[str, Any]]) -> None:
        self.tokens: list[str | Digest | InvalidToken] = []
        for body in bodies:
            claims = body.get(CLAIMS)  # type: ignore[call-overload]
            if isinstance(claims, Digest):
                self.tokens.append(claims)
                continue
            try:
                self.tokens.append(_token(body))
            except InvalidToken as refused:
                self.tokens.append(refused)
        self.check = TokenCheck([t for t in self.tokens if not isinstance(t, InvalidToken)])

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
            if isinstance(verdict, Principal):
                try:
                    verdict = _device(verdict, protected=isinstance(token, Digest))
                except InvalidToken as refused:
                    verdict = refused
            answers.append(verdict)
        return answers


def _token(body: dict[str, Any]) -> str:
    token = body.get("at")
    if not isinstance(token, str):
        raise InvalidToken("invalid_token", "at must be the device's access token")
    return token


def _is_device(principal: Principal) -> bool:
    return principal.kind == "device" and principal.device_id is not None


def _device(principal: Principal, *, protected: bool) -> Principal:
    if not _is_device(principal):
        raise InvalidToken("invalid_token", "not a device token")
    if principal.oscore and not protected:
        raise InvalidToken("invalid_token", MUST_USE_OSCORE)
    return principal
