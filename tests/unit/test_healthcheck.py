"""The container health probes' own parts (tests/e2e/test_topology.py runs them for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from restock.healthcheck import coap_discovery_request, main


def test_the_coap_probe_asks_discovery_in_one_confirmable_get() -> None:
    """CON GET, its token after the header, Uri-Path ".well-known" then "core" (RFC 7252 §3)."""
    request = coap_discovery_request(0x1234, b"\xab\xcd")
    assert request == bytes([0x42, 0x01, 0x12, 0x34, 0xAB, 0xCD, 0xBB]) + (
        b".well-known" + bytes([0x04]) + b"core"
    )


def test_the_database_probe_without_a_url_is_unhealthy_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No DATABASE_URL: exit 1 saying so, and no SQLite file appears at the default path."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["db"]) == 1
    assert "DATABASE_URL is not set" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
