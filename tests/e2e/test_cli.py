"""The command line as an operator uses it: seed, migrate and run."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import requests

from tests.e2e.conftest import restock_env, run_cli


def test_seed_demo_json_is_idempotent_and_prints_passwords_once(tmp_path: Path) -> None:
    """Run twice: same store and clients; passwords and the Alexa secret only the first time."""
    env = restock_env(tmp_path)
    first = run_cli(["seed", "--demo", "--json"], env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["merchant"]["password"] and report["shopper"]["password"]
    assert report["merchant"]["password"] != report["shopper"]["password"]
    assert report["clients"]["alexa"]["client_secret"]
    assert report["clients"]["merchant_api"]["client_secret"]
    assert {p["sku"] for p in report["products"]} >= {"COF-PODS-50", "BAT-AA-8"}
    assert all(isinstance(p["price_minor"], int) for p in report["products"])

    second = run_cli(["seed", "--demo", "--json"], env)
    again = json.loads(second.stdout.strip().splitlines()[-1])
    assert again["store_id"] == report["store_id"]
    assert again["clients"]["button"] == report["clients"]["button"]
    assert again["merchant"]["password"] is None and again["shopper"]["password"] is None
    assert again["clients"]["alexa"]["client_secret"] is None
    api_client = report["clients"]["merchant_api"]["client_id"]
    assert again["clients"]["merchant_api"] == {"client_id": api_client, "client_secret": None}


def test_two_fresh_installs_get_different_passwords(tmp_path: Path) -> None:
    """No fixed demo credentials: each new database gets its own."""
    one = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path / "a"))
    two = run_cli(["seed", "--demo", "--json"], restock_env(tmp_path / "b"))
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (one, two))
    assert first["merchant"]["password"] != second["merchant"]["password"]


def test_migrate_upgrades_an_empty_database(tmp_path: Path) -> None:
    """`migrate` creates the schema and says where."""
    result = run_cli(["migrate"], restock_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "to head" in result.stdout
    assert (tmp_path / "restock.db").exists()


def test_run_serves_healthz_and_stops_on_sigterm(
    running_restock: tuple[str, subprocess.Popen[str]],
) -> None:
    """`run` migrates, seeds, serves /healthz over HTTP, and exits cleanly on SIGTERM."""
    base, proc = running_restock
    response = requests.get(f"{base}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    missing = requests.get(f"{base}/no-such-page", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    output = proc.stdout.read() if proc.stdout else ""
    assert "password:" in output and base in output


def test_unknown_command_exits_with_usage(tmp_path: Path) -> None:
    """A mistyped command is a usage error (exit 2), not a traceback."""
    result = run_cli(["frobnicate"], restock_env(tmp_path))
    assert result.returncode == 2
    assert "usage" in result.stderr.lower()


def test_unknown_page_is_html_for_browsers_and_problem_json_for_clients(
    running_restock: tuple[str, subprocess.Popen[str]],
) -> None:
    """A browser gets an HTML 404 page; an API client gets problem+json."""
    base, _proc = running_restock
    page = requests.get(f"{base}/no-such-page", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<h1>404 · Not Found</h1>" in page.text
    api = requests.get(f"{base}/api/v1/nothing", headers={"Accept": "text/html"}, timeout=5)
    assert api.status_code == 404
    assert api.headers["Content-Type"].startswith("application/problem+json")
