"""Interop: libcoap's command-line client (an independent CoAP stack) against the real hub."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cbor2
import pytest

from orders.store.db import Database
from orders.store.model import Order
from tests.conftest import require_or_skip
from tests.e2e.hub_fixtures import RunningHub, build_devices, hub
from tests.factories import count

__all__ = ["hub"]
CLIENT = "coap-client-notls"


@pytest.fixture
def coap_client() -> str:
    """Path of libcoap's client (Debian package libcoap3-bin)."""
    found = shutil.which(CLIENT)
    if found is None:
        require_or_skip(f"{CLIENT} not on PATH (apt-get install libcoap3-bin)")
    assert found is not None
    return found


def _coap(binary: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([binary, "-B", "10", *args], capture_output=True, timeout=30, check=False)


@pytest.mark.e2e
def test_libcoap_reads_well_known_core(coap_client: str, hub: RunningHub) -> None:
    """GET /.well-known/core parses as link-format with our rt values."""
    result = _coap(coap_client, "-m", "get", f"{hub.uri}/.well-known/core")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert '</press>;ct="60 50";rt="restock.press"' in text
    assert '</orders>;rt="restock.order";obs' in text


@pytest.mark.e2e
def test_libcoap_presses_in_cbor_and_in_json(
    coap_client: str, hub: RunningHub, db: Database, tmp_path: Path
) -> None:
    """A CBOR press (-t 60 -f file) places; a JSON one (-t 50 -e) is in_progress, in JSON."""
    devices = build_devices(db)
    body = tmp_path / "press.cbor"
    body.write_bytes(cbor2.dumps({"at": devices.button_token, "seq": 1}))
    placed = _coap(coap_client, "-m", "post", "-t", "60", "-f", str(body), f"{hub.uri}/press")
    assert placed.returncode == 0, placed.stderr
    answer = cbor2.loads(placed.stdout.rstrip(b"\n"))
    assert answer["result"] == "placed"
    text = json.dumps({"at": devices.button_token, "seq": 2})
    again = _coap(coap_client, "-m", "post", "-t", "50", "-e", text, f"{hub.uri}/press")
    assert json.loads(again.stdout)["result"] == "in_progress"
    refused = _coap(coap_client, "-m", "post", "-t", "50", "-e", '{"at":"x","seq":1}',
                    f"{hub.uri}/press")  # fmt: skip
    # libcoap prints error responses on stderr, prefixed with their code.
    assert refused.stderr.startswith(b"4.01") and b"invalid_token" in refused.stderr
    assert count(db, Order) == 1
