"""HTTP helpers every web adapter shares: problem+json errors and bearer-token checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Response, g, jsonify, request

from auth.principal import InvalidToken, Principal
from auth.tokens import verify_access_token
from orders.store.db import Database

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM = "application/problem+json"


def problem(status: int, error: str, detail: str = "", **extra: Any) -> Response:
    """An RFC 9457 problem response carrying the contract's `error` word."""
    body: dict[str, Any] = {"type": "about:blank", "title": error, "status": status}
    body["error"] = error
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    return response


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_token(db: Database | Callable[[], Database], scope: str) -> Callable[[F], F]:
    """Decorate a view to need a bearer token with `scope`; the principal is `g.principal`.

    `db` may be a function returning the database, for views defined before any app exists.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token()
            if token is None:
                return _unauthorized("invalid_token", "a bearer token is required")
            try:
                database = db if isinstance(db, Database) else db()
                g.principal = verify_access_token(database, token, scope)
            except InvalidToken as exc:
                if exc.error == "insufficient_scope":
                    return problem(403, exc.error, exc.detail)
                return _unauthorized(exc.error, exc.detail)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def current_principal() -> Principal:
    """The principal `require_token` put on `g`."""
    return cast(Principal, g.principal)


def _unauthorized(error: str, detail: str) -> Response:
    response = problem(401, error, detail)
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return response
