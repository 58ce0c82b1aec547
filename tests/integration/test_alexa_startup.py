"""Alexa start-up safety: no skill id disables /alexa, verification off is said and never https."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from orders.store.db import Database
from restock.app import create_app
from restock.settings import Settings, SettingsError
from tests.factories import db_snapshot

SKILL_ID = "amzn1.ask.skill.5c3e1d7a-0f44-4b7e-9a11-6d2f0c8e9b21"


def _settings(db: Database, tmp_path: Path, **changes: object) -> Settings:
    """Settings over the test database, with `changes` applied."""
    base: dict[str, object] = {
        "database_url": str(db.engine.url),
        "secret_key": secrets.token_hex(16),
        "var_dir": tmp_path / "var",
        "public_url": "http://restock.test",
    }
    return Settings(**{**base, **changes})  # type: ignore[arg-type]


def test_without_a_skill_id_alexa_is_disabled_loudly_and_the_rest_serves(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Verification on, no skill id: POST /alexa is 503 problem+json, logged; /healthz is ok."""
    with caplog.at_level(logging.ERROR, logger="restock"):
        client = create_app(_settings(db, tmp_path), db).test_client()
    assert any("RESTOCK_ALEXA_SKILL_ID" in r.getMessage() for r in caplog.records)
    before = db_snapshot(db)
    response = client.post("/alexa", data=b'{"request": {}}', content_type="application/json")
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert db_snapshot(db) == before
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_with_a_skill_id_alexa_is_served_and_checks_signatures(
    db: Database, tmp_path: Path
) -> None:
    """Verification on with a skill id: /alexa is mounted and refuses an unsigned request (400)."""
    client = create_app(_settings(db, tmp_path, alexa_skill_id=SKILL_ID), db).test_client()
    response = client.post("/alexa", data=b'{"request": {}}', content_type="application/json")
    assert response.status_code == 400


def test_healthz_says_when_alexa_verification_is_off(db: Database, tmp_path: Path) -> None:
    """With RESTOCK_ALEXA_VERIFY=off /healthz reports it, so a monitor can see it."""
    client = create_app(_settings(db, tmp_path, alexa_verify=False), db).test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "alexa_verification": "off"}


def test_verification_off_with_an_https_public_url_refuses_to_start(
    db: Database, tmp_path: Path
) -> None:
    """RESTOCK_ALEXA_VERIFY=off is for local testing: an https deployment refuses to build."""
    settings = _settings(db, tmp_path, alexa_verify=False, public_url="https://shop.example")
    with pytest.raises(SettingsError, match="RESTOCK_ALEXA_VERIFY"):
        create_app(settings, db)
