"""The device HTTP twin refuses the hub's decoder attacks too: JSON only, bounded work."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from orders.store.db import Database
from tests.e2e.hub_fixtures import build_devices
from tests.factories import db_snapshot
from tests.unit.test_hub_ingress import shared_reference_dag

PRESS = "/api/v1/device/press"
TELEMETRY = "/api/v1/device/telemetry"


def _post(
    app: Flask, path: str, token: str, data: bytes, content_type: str
) -> tuple[int, dict[str, Any]]:
    response = app.test_client().post(
        path, data=data, content_type=content_type, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.mimetype == "application/problem+json"
    return response.status_code, response.get_json()


@pytest.mark.parametrize("path", [PRESS, TELEMETRY])
def test_a_cbor_shared_reference_body_is_unsupported_media_on_the_twin(
    app: Flask, db: Database, path: str
) -> None:
    """The twin speaks JSON only: a CBOR DAG labelled as CBOR is 415, before any decoding."""
    devices = build_devices(db)
    before = db_snapshot(db)
    status, body = _post(
        app, path, devices.appliance_token, shared_reference_dag(20), "application/cbor"
    )
    assert status == 415 and body["error"] == "bad_payload"
    assert db_snapshot(db) == before


@pytest.mark.parametrize(
    ("path", "data"),
    [
        (PRESS, b'{"seq": 1, "x": ' + b"[" * 900 + b"]" * 900 + b"}"),
        (PRESS, b'{"seq": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        (TELEMETRY, b"[" * 5000 + b"]" * 5000),
        (PRESS, shared_reference_dag(20)),  # unlabelled bytes are read as JSON: not JSON
    ],
)
def test_deep_or_foreign_bodies_are_400_on_the_twin_and_change_nothing(
    app: Flask, db: Database, path: str, data: bytes
) -> None:
    """Deep nesting (within or past the size limit) and CBOR bytes: 400 or 415, DB unchanged."""
    devices = build_devices(db)
    before = db_snapshot(db)
    status, body = _post(app, path, devices.appliance_token, data, "application/json")
    assert status in (400, 413) and body["error"] == "bad_payload"
    assert db_snapshot(db) == before
