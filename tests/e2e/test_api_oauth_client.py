"""The merchant REST API driven by an independent OAuth client (Authlib) against `restock run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from authlib.integrations.requests_client import OAuth2Session

from auth.principal import MERCHANT_API_SCOPES
from tests.e2e.conftest import restock_env, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_api(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, str]]:
    """`seed --demo --json` (the API client's secret is printed only then), then `run`."""
    result = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path))
    assert result.returncode == 0, result.stderr
    demo: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    running: tuple[str, subprocess.Popen[str]] = request.getfixturevalue("running_restock")
    return running[0], demo["clients"]["merchant_api"]


def _session(base: str, client: dict[str, str], scope: str | None = None) -> OAuth2Session:
    oauth = OAuth2Session(client["client_id"], client["client_secret"], scope=scope,
                          token_endpoint_auth_method="client_secret_basic")  # fmt: skip
    oauth.fetch_token(f"{base}/oauth/token", grant_type="client_credentials")
    return oauth


def test_the_seeded_client_runs_the_catalog_through_client_credentials(
    demo_api: tuple[str, dict[str, str]],
) -> None:
    """Every merchant scope; list, create (idempotent), adjust stock, archive, read devices."""
    base, client = demo_api
    api = f"{base}/api/v1"
    oauth = _session(base, client)
    assert set(oauth.token["scope"].split()) == set(MERCHANT_API_SCOPES)
    assert "refresh_token" not in oauth.token

    assert oauth.get(f"{api}/orders").json()["orders"] == []
    skus = {p["sku"] for p in oauth.get(f"{api}/products?limit=100").json()["products"]}
    assert "COF-PODS-50" in skus
    new = {"sku": "TEA-20", "name": "Green tea (20)", "price_minor": 450, "stock": 3}
    made = oauth.post(f"{api}/products", json=new, headers={"Idempotency-Key": "tea-1"})
    again = oauth.post(f"{api}/products", json=new, headers={"Idempotency-Key": "tea-1"})
    assert made.status_code == again.status_code == 201
    assert again.json() == made.json() and again.headers["Idempotent-Replayed"] == "true"
    product = made.json()
    adjusted = oauth.post(f"{api}/products/{product['id']}/stock-adjustments",
                          json={"delta": 10, "reason": "first delivery"})  # fmt: skip
    assert adjusted.status_code == 201 and adjusted.json()["stock_after"] == 13
    archived = oauth.post(f"{api}/products/{product['id']}/archive").json()
    assert archived["active"] is False and archived["stock"] == 13
    models = oauth.get(f"{api}/device-models").json()["device_models"]
    assert {m["kind"] for m in models} == {"button", "appliance"}
    assert oauth.get(f"{api}/devices").json() == {"devices": [], "next_cursor": None}


def test_a_token_asked_for_one_scope_gets_403_elsewhere_and_401_once_revoked(
    demo_api: tuple[str, dict[str, str]],
) -> None:
    """scope=orders:read reads orders but may not write the catalog; a revoked token is 401."""
    base, client = demo_api
    api = f"{base}/api/v1"
    oauth = _session(base, client, scope="orders:read")
    assert oauth.token["scope"] == "orders:read"
    assert oauth.get(f"{api}/orders").status_code == 200
    refused = oauth.post(f"{api}/products", json={"sku": "X", "name": "X", "price_minor": 1})
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["error"] == "insufficient_scope"
    oauth.revoke_token(f"{base}/oauth/revoke", token=oauth.token["access_token"])
    assert oauth.get(f"{api}/orders").status_code == 401
