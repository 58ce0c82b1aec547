"""The device HTTP twin against `python -m restock run`: link over HTTP, press, read the order."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.auth_helpers import browser_link, browser_sign_in
from tests.e2e.conftest import restock_env, run_cli

pytestmark = pytest.mark.e2e
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def seeded(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """`seed --demo --json` (passwords are printed only then), then `run`."""
    result = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path))
    assert result.returncode == 0, result.stderr
    demo: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    running: tuple[str, subprocess.Popen[str]] = request.getfixturevalue("running_restock")
    return running[0], demo


def test_a_wifi_button_links_presses_and_reads_its_order_over_http(
    seeded: tuple[str, dict[str, Any]],
) -> None:
    """Device flow over HTTP, the shopper approves at /link, then press/duplicate/order read."""
    base, demo = seeded
    button = demo["clients"]["button"]
    started = requests.post(
        f"{base}/oauth/device_authorization",
        data={"client_id": button, "serial": "WIFI-1"},
        timeout=10,
    )
    assert started.status_code == 200, started.text
    flow = started.json()
    shopper = demo["shopper"]
    browser = browser_sign_in(base, shopper["email"], shopper["password"])
    browser_link(browser, flow["verification_uri_complete"], "approve", "BAT-AA-8")
    issued = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": flow["device_code"], "client_id": button},
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}

    pressed = requests.post(f"{base}/api/v1/device/press", json={"seq": 1}, headers=auth,
                            timeout=10)  # fmt: skip
    assert pressed.status_code == 201, pressed.text
    body = pressed.json()
    assert body["result"] == "placed" and body["order"]["sku"] == "BAT-AA-8"
    again = requests.post(f"{base}/api/v1/device/press", json={"seq": 1}, headers=auth, timeout=10)
    assert again.json()["result"] == "duplicate"

    order = requests.get(f"{base}/api/v1/device/orders/{body['order']['id']}", headers=auth,
                         timeout=10)  # fmt: skip
    assert order.status_code == 200
    assert order.json()["id"] == body["order"]["id"] and order.json()["status"] == "placed"

    refused = requests.post(f"{base}/api/v1/device/press", data="{", headers=auth, timeout=10)
    assert refused.status_code == 400
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    anonymous = requests.post(f"{base}/api/v1/device/press", json={"seq": 2}, timeout=10)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_token")
