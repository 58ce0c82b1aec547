"""The OpenAPI 3.1 document (`/api/v1/openapi.json`) and a Swagger UI page served offline.

The page's script and style come from the installed `offapi` package as files of our own
origin, so it works without a CDN and under the app's `script-src 'self'` policy.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

from flask import Response, jsonify

from auth.principal import MERCHANT_API_SCOPES, SCOPE_TEXT
from dashboard.api.base import OPERATIONS, bp, spec

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Restock merchant API</title>
<link rel="stylesheet" href="/api/v1/docs/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/api/v1/docs/swagger-ui.js"></script>
<script src="/api/v1/docs/start.js"></script>
</body></html>
"""
START = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui"});
});
"""
# Our name → (file in the offapi package, media type).
ASSETS = {
    "swagger-ui.js": ("swagger_bundle.js", "text/javascript"),
    "swagger-ui.css": ("swagger_style.css", "text/css"),
}
PROBLEM = "application/problem+json"


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of the REST API, generated from the routes' declarations."""
    return jsonify(document())


@bp.get("/docs")
def docs_page() -> Response:
    """A browsable page of the document (Swagger UI, from the installed package)."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/docs/start.js")
def docs_start() -> Response:
    """The page's one line of set-up, as a file (no inline script under our CSP)."""
    return Response(START, mimetype="text/javascript")


@bp.get("/docs/<name>")
def docs_asset(name: str) -> Response:
    """Swagger UI's script and style, read from the installed offapi package."""
    if name not in ASSETS:
        return Response("not found", status=404, mimetype="text/plain")
    filename, mimetype = ASSETS[name]
    body = resources.files("offapi").joinpath(filename).read_bytes()
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "max-age=86400"})


@cache
def document() -> dict[str, Any]:
    """spectree's document with what it cannot say: scopes, problem+json, Idempotency-Key."""
    doc = copy.deepcopy(spec.spec)
    doc["components"]["securitySchemes"] = {
        "oauth2": {
            "type": "oauth2",
            "description": "Client credentials of a merchant API client (integrations page).",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/oauth/token",
                    "scopes": {scope: SCOPE_TEXT[scope] for scope in MERCHANT_API_SCOPES},
                }
            },
        }
    }
    for operations in doc["paths"].values():
        for operation in operations.values():
            _complete(operation)
    return doc


def _complete(operation: dict[str, Any]) -> None:
    # spectree names every body application/json; our errors are problem+json.
    for status, response in operation["responses"].items():
        if int(status) >= 400 and "application/json" in response.get("content", {}):
            response["content"] = {PROBLEM: response["content"]["application/json"]}
    declared = OPERATIONS.get(operation["operationId"])
    if declared is not None and declared.idempotent:
        operation["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Repeats with the same key get the first answer, not a copy.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                           "pattern": "^[!-~]+$"},
            }
        )  # fmt: skip
