"""Token checks per second beside a dict lookup, and /oauth/token requests per second over HTTP.

python -m bench.tokens [--checks N] [--requests N] [--url DATABASE_URL]

Part 1 calls `verify_access_token` (one indexed SELECT, plus the link row for device
tokens) and, in the same run, a bare dict lookup of the same tokens: the floor any cache
could reach. Part 2 serves the real app on waitress and POSTs `client_credentials` to
/oauth/token (client auth, scope check, one INSERT) beside GET /healthz (one SELECT 1) on
the same server, over one keep-alive connection.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from auth.model import OAuthClient
from auth.principal import MERCHANT_SCOPES
from auth.tokens import issue_token, token_hash, verify_access_token
from bench.common import percentile, scratch_database
from orders.services.catalog import create_store
from orders.store.db import Database
from restock.app import create_app
from restock.server import web_in_thread
from restock.settings import Settings

Row = tuple[str, list[float]]


def _timed(label: str, n: int, one: Callable[[int], object]) -> list[float]:
    latencies = []
    for i in tqdm(range(n), desc=label, unit="call", leave=False):
        start = time.perf_counter()
        one(i)
        latencies.append(time.perf_counter() - start)
    return latencies


def _setup(db: Database, tokens: int) -> tuple[list[str], str, str]:
    """A store, a merchant API client, and `tokens` live merchant tokens."""
    secret = secrets.token_urlsafe(32)
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench", currency="EUR")
        session.add(
            OAuthClient(
                client_id="bench-api", client_secret_hash=token_hash(secret), name="Bench",
                kind="merchant_api", store_id=store.id, grant_types=["client_credentials"],
                scope=MERCHANT_SCOPES, token_endpoint_auth_method="client_secret_basic",
            )
        )  # fmt: skip
        issued = [
            issue_token(
                session,
                client_id="bench-api",
                kind="merchant",
                scope=MERCHANT_SCOPES,
                store_id=store.id,
                with_refresh=False,
            ).access_token  # fmt: skip
            for _ in range(tokens)
        ]
    return issued, "bench-api", secret


def bench_verify(db: Database, tokens: list[str], n: int) -> list[Row]:
    """verify_access_token vs a dict lookup of the same tokens."""
    table = {token: ("merchant", i) for i, token in enumerate(tokens)}

    def lookup(i: int) -> object:
        return table[tokens[i % len(tokens)]]

    def verify(i: int) -> object:
        return verify_access_token(db, tokens[i % len(tokens)], "orders:read")

    return [("dict lookup (baseline)", _timed("dict", n, lookup)),
            ("verify_access_token", _timed("verify", n, verify))]  # fmt: skip


@contextmanager
def _served(db: Database) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=str(db.engine.url), secret_key=secrets.token_hex(16),
            var_dir=Path(tmp), mdns=False, rate_limits=False,
        )  # fmt: skip
        with web_in_thread(create_app(settings, db)) as base:
            yield base


def bench_http(db: Database, client_id: str, secret: str, n: int) -> list[Row]:
    """POST /oauth/token (client_credentials) vs GET /healthz on one waitress server."""
    with _served(db) as base, requests.Session() as http:
        http.get(f"{base}/healthz", timeout=10).raise_for_status()

        def health(_i: int) -> object:
            response = http.get(f"{base}/healthz", timeout=10)
            assert response.status_code == 200
            return response

        def token(_i: int) -> object:
            response = http.post(
                f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client_id, secret), timeout=10,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            return response

        return [("GET /healthz (baseline)", _timed("healthz", n, health)),
                ("POST /oauth/token", _timed("token", n, token))]  # fmt: skip


def _table(title: str, unit: str, rows: list[Row]) -> Table:
    table = Table(title=title)
    for column in ("path", f"{unit}/s", "p50 ms", "p99 ms", "vs baseline"):
        table.add_column(column)
    base_rate = len(rows[0][1]) / sum(rows[0][1])
    for name, latencies in rows:
        rate = len(latencies) / sum(latencies)
        table.add_row(
            name, f"{rate:,.0f}", f"{percentile(latencies, 50) * 1000:.3f}",
            f"{percentile(latencies, 99) * 1000:.3f}", f"{rate / base_rate:.4f}×",
        )  # fmt: skip
    return table


def main() -> None:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--url", default=None, help="DATABASE_URL (default: env, else SQLite)")
    args = parser.parse_args()
    backend = (args.url or "sqlite").split(":")[0]
    console = Console()
    with scratch_database(args.url) as db:
        tokens, client_id, secret = _setup(db, 1000)
        verify = bench_verify(db, tokens, args.checks)
        console.print(_table(f"{args.checks} token checks on {backend}", "calls", verify))
        http = bench_http(db, client_id, secret, args.requests)
        title = f"{args.requests} sequential requests, waitress, {backend}"
        console.print(_table(title, "requests", http))


if __name__ == "__main__":
    main()
