"""The API's docs page in a real Chromium: Swagger UI renders offline under the app's CSP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.dash_fixtures import LiveServer
from tests.e2e.dash_fixtures import chromium as chromium  # noqa: F401 - fixture
from tests.e2e.dash_fixtures import live_server as live_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


def test_the_docs_page_renders_every_operation_with_no_console_error(
    live_server: LiveServer,  # noqa: F811 - fixture
    chromium: Any,  # noqa: F811 - fixture
) -> None:
    """/api/v1/docs lists the operations from openapi.json; no CSP refusal, no other origin."""
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: None if r.url.startswith(live_server.base_url)
            or r.url.startswith("data:") else elsewhere.append(r.url))  # fmt: skip
    try:
        page.goto(f"{live_server.base_url}/api/v1/docs")
        page.get_by_text("Restock merchant API").first.wait_for(timeout=15_000)
        page.get_by_text("/api/v1/products/{product_id}/stock-adjustments").first.wait_for()
        assert page.get_by_text("OAS 3.1").count() >= 1
    finally:
        context.close()
    assert errors == []
    assert elsewhere == []
