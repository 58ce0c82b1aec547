"""schemathesis against `restock run`: generated requests from the OpenAPI document, every
answer checked against it (no 5xx, documented statuses, media types, headers and bodies)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import restock_env, run_cli, start_restock
from tests.pg_schemas import postgres_schema, schema_url

pytestmark = pytest.mark.e2e

# positive_data_acceptance is left out: the store's rules refuse some schema-valid requests
# on purpose (a SKU already taken, stock that would go below zero) with a documented 4xx.
EXCLUDED_CHECKS = "positive_data_acceptance"
# Per operation and phase: one run takes well under a minute.
MAX_EXAMPLES = "15"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database for the server: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'restock.db'}"
        return
    with postgres_schema() as schema:
        yield schema_url(schema)


def test_generated_requests_get_only_documented_answers_and_no_5xx(
    tmp_path: Path, database_url: str
) -> None:
    """`st run` with every check but positive data acceptance passes against the real server."""
    seeded = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path, database_url))
    assert seeded.returncode == 0, seeded.stderr
    client = json.loads(seeded.stdout.strip().splitlines()[-1])["clients"]["merchant_api"]
    server = start_restock(tmp_path, database_url=database_url)
    base, process = next(server)
    # The server logs every request to its stdout pipe: read it, or a full pipe stalls it.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    try:
        token = requests.post(
            f"{base}/oauth/token", data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]), timeout=10,
        ).json()["access_token"]  # fmt: skip
        document = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
        operations = sum(
            method in {"get", "post", "put", "patch", "delete"}
            for path in document["paths"].values()
            for method in path
        )
        result = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"{base}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {token}", "--checks", "all",
                "--exclude-checks", EXCLUDED_CHECKS, "--max-examples", MAX_EXAMPLES,
                "--workers", "1", "--request-timeout", "10",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    finally:
        server.close()
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    # Every operation of the document was tested, however many the API has.
    tested = f"{operations}/{operations}"
    assert "passed" in result.stdout and tested in result.stdout, result.stdout[-3000:]
