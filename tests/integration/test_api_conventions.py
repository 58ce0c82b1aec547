"""The REST API's conventions: the OpenAPI 3.1 document, its docs page, scopes, problem+json."""

from __future__ import annotations

import pytest
from flask import Flask

from auth.principal import MERCHANT_API_SCOPES, SHOPPER_SCOPES
from auth.tokens import issue_token
from orders.store.db import Database
from tests.api_helpers import assert_problem, call, merchant_token
from tests.dash_helpers import build_tenants
from tests.factories import db_snapshot

# (method, path, scope) of every merchant route that needs an area's scope.
ROUTES = [
    ("GET", "/orders/x", "orders:read"),
    ("POST", "/orders/x/ship", "orders:write"),
    ("POST", "/orders/x/deliver", "orders:write"),
    ("POST", "/orders/x/cancel", "orders:write"),
    ("GET", "/products", "catalog:read"),
    ("POST", "/products", "catalog:write"),
    ("GET", "/products/1", "catalog:read"),
    ("PATCH", "/products/1", "catalog:write"),
    ("POST", "/products/1/archive", "catalog:write"),
    ("POST", "/products/1/stock-adjustments", "catalog:write"),
    ("GET", "/products/1/stock-adjustments", "catalog:read"),
    ("GET", "/devices", "devices:read"),
    ("GET", "/devices/1", "devices:read"),
    ("POST", "/devices/1/revoke", "devices:write"),
    ("GET", "/device-models", "devices:read"),
    ("POST", "/device-models", "devices:write"),
]


def test_the_openapi_document_is_3_1_with_every_route_its_scope_and_problem_errors(
    app: Flask,
) -> None:
    """/api/v1/openapi.json: OpenAPI 3.1.0, each route with its oauth2 scope, errors as problems."""
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["clientCredentials"]["tokenUrl"] == "/oauth/token"
    for method, path, scope in ROUTES:
        templated = "/api/v1" + path.replace("/x", "/{order_id}").replace(
            "/products/1", "/products/{product_id}"
        ).replace("/devices/1", "/devices/{device_id}")
        operation = doc["paths"][templated][method.lower()]
        assert operation["security"] == [{"oauth2": [scope]}], templated
        assert "application/problem+json" in operation["responses"]["403"]["content"]
    order = doc["components"]["schemas"]["Order"]["properties"]
    assert {"id", "status", "channel", "lines", "total_minor", "currency", "ship_to"} <= set(order)
    ship = doc["paths"]["/api/v1/orders/{order_id}/ship"]["post"]
    body = ship["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(doc["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"]) == {
        "carrier", "tracking_number", "tracking_url"}  # fmt: skip
    creating = doc["paths"]["/api/v1/products"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in creating)
    assert "/api/v1/device/press" not in doc["paths"]


def test_the_docs_page_loads_its_script_from_the_app_itself(app: Flask) -> None:
    """/api/v1/docs is Swagger UI whose script and style the app serves: no CDN, no inline JS."""
    client = app.test_client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "https://" not in page.text and "<script>" not in page.text
    script = client.get("/api/v1/docs/swagger-ui.js")
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.data
    assert client.get("/api/v1/docs/swagger-ui.css").status_code == 200
    assert "/api/v1/openapi.json" in client.get("/api/v1/docs/start.js").text
    assert client.get("/api/v1/docs/nothing.js").status_code == 404


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_a_token_without_the_areas_scope_is_refused_with_403(
    app: Flask, db: Database, method: str, path: str, scope: str
) -> None:
    """Each route needs its own area's scope: every other merchant scope gets a 403 problem."""
    t = build_tenants(db)
    others = " ".join(s for s in MERCHANT_API_SCOPES if s != scope)
    token = merchant_token(db, t.ours.store_id, others)
    before = db_snapshot(db)
    response = call(app, method, path, token, body={})
    assert_problem(response, 403, "insufficient_scope")
    assert db_snapshot(db) == before


def test_no_token_is_401_with_a_bearer_challenge(app: Flask) -> None:
    """Without a token the answer is 401 problem+json with WWW-Authenticate: Bearer."""
    response = call(app, "GET", "/products", None)
    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_shopper_token_never_reaches_a_merchant_route(app: Flask, db: Database) -> None:
    """A shopper's token (even with orders:read) gets 403 on a store's order."""
    t = build_tenants(db)
    with db.write() as session:
        token = issue_token(session, client_id="web", kind="shopper", scope=SHOPPER_SCOPES,
                            shopper_id=t.ours.shopper_id).access_token  # fmt: skip
    assert_problem(call(app, "GET", f"/orders/{t.order_id}", token), 403, "insufficient_scope")


def test_a_body_that_breaks_its_schema_is_400_and_changes_nothing(app: Flask, db: Database) -> None:
    """Missing, extra or mistyped fields, or control characters, are 400 problems; no rows move."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    before = db_snapshot(db)
    for body in (
        {},
        {"carrier": "DHL"},
        {"carrier": "DHL", "tracking_number": "1", "colour": "red"},
        {"carrier": 5, "tracking_number": "1"},
        {"carrier": "D\x00HL", "tracking_number": "1"},
        {"carrier": "DHL", "tracking_number": "1", "tracking_url": "javascript:alert(1)"},
        [1, 2],
    ):
        response = call(app, "POST", f"/orders/{t.order_id}/ship", token, body=body)
        assert_problem(response, 400, "invalid_request")
        assert response.get_json()["errors"], body
    assert db_snapshot(db) == before


def test_a_body_sent_as_a_form_is_415(app: Flask, db: Database) -> None:
    """A JSON route refuses another media type with 415 before doing anything."""
    t = build_tenants(db)
    response = app.test_client().post(
        f"/api/v1/orders/{t.order_id}/ship", data={"carrier": "DHL", "tracking_number": "1"},
        headers={"Authorization": f"Bearer {merchant_token(db, t.ours.store_id)}"},
    )  # fmt: skip
    assert_problem(response, 415)


def test_unknown_paths_and_ids_out_of_range_are_404_problems(app: Flask, db: Database) -> None:
    """A route that is not there, an id past INTEGER and an odd order id: 404 problem+json."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    assert_problem(call(app, "GET", "/nothing", token), 404)
    assert_problem(call(app, "GET", "/products/99999999999999999999", token), 404)
    assert_problem(call(app, "GET", "/products/2147483648/stock-adjustments", token), 404)
    assert_problem(call(app, "PATCH", "/products/2147483648", token, body={}), 404)
    assert_problem(call(app, "GET", "/orders/a%00b", token), 404)


def test_a_body_that_is_not_json_is_400(app: Flask, db: Database) -> None:
    """Bytes that do not parse as JSON are refused, not read as an empty object."""
    t = build_tenants(db)
    token = merchant_token(db, t.ours.store_id)
    product_id = call(app, "GET", "/products", token).get_json()["products"][0]["id"]
    before = db_snapshot(db)
    for body in (b"\x00", b"null", b"{", b"[]"):
        response = app.test_client().patch(
            f"/api/v1/products/{product_id}", data=body, content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert_problem(response, 400, "invalid_request")
    assert db_snapshot(db) == before


def test_a_method_a_path_does_not_have_is_405_naming_the_ones_it_has(app: Flask) -> None:
    """405 problem+json carries Allow (RFC 9110), from the app and from the API alike."""
    response = app.test_client().open("/api/v1/products", method="TRACE")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
