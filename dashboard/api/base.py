"""The REST API's conventions: one blueprint, one `endpoint` decorator, problem+json errors.

A route is a small view under `@bp.<method>(path)` and `@endpoint(scope, ...)`: the bearer
token and its scope are checked first, then spectree validates the query and JSON body
against pydantic models (and the answer against the response model), and the OpenAPI
document at `/api/v1/openapi.json` is generated from the same decorators.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, request
from pydantic import BaseModel
from spectree import Response as Responses
from spectree import SpecTree
from werkzeug.exceptions import HTTPException

from auth.http import current_principal, problem, require_token
from auth.principal import Principal
from dashboard.api import idempotency
from dashboard.api.schemas import Problem
from dashboard.common import get_db
from orders.domain.errors import DomainError, InvalidRequest, NotAllowed, NotFound, OrderRefused
from orders.services.idempotency import KeyInFlight, KeyReused

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Domain errors → HTTP status, in one table (STYLE.md §7).
STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (KeyReused, 422),
    (KeyInFlight, 409),
    (NotFound, 404),
    (OrderRefused, 409),
    (NotAllowed, 409),
    (InvalidRequest, 400),
]
# Path ids are plain ints, checked against INTEGER's range by `endpoint`: with `int(max=…)`
# Werkzeug's matcher answers 405 (naming another rule's methods) for an id past the max.
ID = "int"
MAX_ID = 2**31 - 1
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Error statuses every operation documents (with the problem+json schema).
COMMON_ERRORS = (400, 401, 403)


class ApiProblem(Exception):
    """An HTTP refusal raised anywhere in a view; answered as problem+json."""

    def __init__(self, status: int, error: str, detail: str = "", **extra: Any) -> None:
        self.status, self.error, self.detail, self.extra = status, error, detail, extra
        super().__init__(f"{status} {error}: {detail}")


def _invalid(req: Any, resp: Any, error: Any, instance: Any, adapter: Any) -> None:
    """spectree's `before` hook: a request that fails its schema is a problem+json 400."""
    if error is None:
        return
    errors = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    raise ApiProblem(400, "invalid_request", "the request does not match its schema", errors=errors)


# strict: only routes decorated with `endpoint` are documented (not the device twin).
# `path` is where spectree would mount its own pages; we serve the document ourselves.
spec = SpecTree(
    "flask",
    mode="strict",
    title="Restock merchant API",
    version="1.0.0",
    path="api/v1/spectree",
    description="Orders, catalog, devices and webhooks of one store, for the store's systems.",
    validation_error_status=400,
    validation_error_model=Problem,
    before=_invalid,
    # Schemas by their class names: one component per model, shared where nested.
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
)


@dataclass(frozen=True)
class Operation:
    """What the document says about a route beyond its schemas."""

    scope: str
    idempotent: bool


OPERATIONS: dict[str, Operation] = {}


def endpoint(
    scope: str,
    *,
    resp: Responses,
    query: type[BaseModel] | None = None,
    json: type[BaseModel] | None = None,
    tags: tuple[str, ...] = (),
    idempotent: bool = False,
    merchant: bool = True,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Declare a route: its scope, schemas and answers (the document is made from these).

    `merchant=False` lets any token kind with `scope` in (the view scopes what it shows);
    `idempotent=True` honours an `Idempotency-Key` header; `errors` adds documented
    error statuses (404, 409, 422, …) to the common 400/401/403.
    """
    for status in (*COMMON_ERRORS, *errors):
        resp.add_model(status, Problem, replace=False)

    def decorate(view: F) -> F:
        validated = spec.validate(
            query=query,
            json=json,
            resp=resp,
            tags=list(tags),
            security={"oauth2": [scope]},
            operation_id=view.__name__,
        )(view)

        @wraps(validated)
        def checked(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if merchant and (principal.kind != "merchant" or principal.store_id is None):
                raise ApiProblem(403, "insufficient_scope", "this needs a merchant API client")
            if any(isinstance(v, int) and v > MAX_ID for v in kwargs.values()):
                raise NotFound("not_found", "no such resource")  # past INTEGER: none exists
            if json is not None:
                _check_json_body()
            if idempotent:
                return idempotency.once(principal.client_id, lambda: validated(*args, **kwargs))
            return validated(*args, **kwargs)

        wrapper = require_token(get_db, scope)(checked)
        OPERATIONS[view.__name__] = Operation(scope, idempotent)
        return cast(F, wrapper)

    return decorate


def _check_json_body() -> None:
    """415 for another media type; 400 for a body that is not a JSON object."""
    if not request.is_json:
        raise ApiProblem(415, "unsupported_media_type", "send application/json")
    # spectree reads an unparsable or `null` body as {}; an empty body is {} by intent.
    if request.get_data() and not isinstance(request.get_json(silent=True), dict):
        errors = [{"loc": [], "msg": "the body must be a JSON object"}]
        raise ApiProblem(400, "invalid_request", "the body is not a JSON object", errors=errors)


def order_ref(order_id: str) -> str:
    """An order id from a path, or NotFound: ids are URL-safe text (no NUL reaches the DB)."""
    if not ORDER_ID.fullmatch(order_id):
        raise NotFound("not_found", "no such order")
    return order_id


def store_id() -> int:
    """The calling merchant client's store (only valid inside a merchant `endpoint`)."""
    principal: Principal = current_principal()
    assert principal.store_id is not None
    return principal.store_id


@bp.errorhandler(ApiProblem)
def api_problem(exc: ApiProblem) -> Response:
    """A refusal a view raised, as problem+json."""
    return problem(exc.status, exc.error, exc.detail, **exc.extra)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError) -> Response:
    """A domain refusal as problem+json with the status the table names."""
    status = next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), 400)
    if isinstance(exc, OrderRefused):
        return problem(status, "refused", exc.detail, reason=exc.reason)
    # Bad input keeps one error word; `reason` says what exactly was wrong.
    error = "invalid_request" if status == 400 else exc.reason
    return problem(status, error, exc.detail, reason=exc.reason)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Any HTTP error as problem+json, never HTML."""
    code = exc.code or 500
    response = problem(code, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    for name, value in exc.get_headers():  # e.g. a 405's Allow
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def created(body: dict[str, Any], location: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A 201 answer with its Location."""
    return body, 201, {"Location": location}


def request_path() -> str:
    """The path of this request (for Location headers and replay keys)."""
    return request.path
