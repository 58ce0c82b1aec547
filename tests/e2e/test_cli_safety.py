"""`run` as production uses it: no demo logins unless asked, private files, unsafe settings."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from auth.model import Account
from orders.store.db import Database, make_engine
from orders.store.model import Store
from tests.e2e.conftest import restock_env, run_cli, start_restock

pytestmark = pytest.mark.e2e


def _mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


def _count(database_url: str, entity: type[object]) -> int:
    """Rows of `entity` in the database at `database_url`."""
    db = Database(make_engine(database_url))
    try:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(entity)) or 0)
    finally:
        db.dispose()


def test_run_without_demo_seeds_nothing_and_prints_no_logins(tmp_path: Path) -> None:
    """A production `run` (no --demo) creates no store or account and prints no password."""
    runs = start_restock(tmp_path)
    _base, proc = next(runs)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    output = proc.stdout.read() if proc.stdout else ""
    runs.close()
    assert "password" not in output.lower()
    database_url = restock_env(tmp_path)["DATABASE_URL"]
    assert _count(database_url, Store) == 0
    assert _count(database_url, Account) == 0


def test_run_with_demo_seeds_the_demo_store_and_prints_its_logins_once(tmp_path: Path) -> None:
    """`run --demo` (what `make run` passes) seeds the demo store and prints the logins."""
    runs = start_restock(tmp_path, "--demo")
    _base, proc = next(runs)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    output = proc.stdout.read() if proc.stdout else ""
    runs.close()
    assert "password:" in output
    assert _count(restock_env(tmp_path)["DATABASE_URL"], Store) == 1


def test_make_run_asks_for_the_demo() -> None:
    """The Makefile's `run` target passes --demo (the README quick start relies on it)."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "-m restock run --demo" in recipe


def test_the_sqlite_file_and_var_dir_are_owner_only(tmp_path: Path) -> None:
    """`migrate` on a fresh machine creates var/ as 0700 and the database file as 0600."""
    var = tmp_path / "var"
    env = restock_env(tmp_path, DATABASE_URL=f"sqlite:///{var / 'restock.db'}")
    old = os.umask(0o022)
    try:
        result = run_cli(["migrate"], env)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert _mode(var) == 0o700
    assert _mode(var / "restock.db") == 0o600


def test_a_secret_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """An existing var/secret_key readable by group or others stops `run` with a clear message."""
    var = tmp_path / "var"
    var.mkdir(mode=0o700)
    key = var / "secret_key"
    key.write_text("k" * 64)
    key.chmod(0o644)
    result = run_cli(["run"], restock_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert str(key) in result.stderr and "0644" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_fresh_secret_key_file_is_owner_only(tmp_path: Path) -> None:
    """The key `run` generates on first start is 0600 inside a 0700 var/."""
    runs = start_restock(tmp_path)
    _base, proc = next(runs)
    runs.close()
    assert proc.returncode is not None
    assert _mode(tmp_path / "var") == 0o700
    assert _mode(tmp_path / "var" / "secret_key") == 0o600


def test_verification_off_with_an_https_public_url_is_refused_at_start(tmp_path: Path) -> None:
    """RESTOCK_ALEXA_VERIFY=off with an https RESTOCK_PUBLIC_URL exits 2 and says why."""
    env = restock_env(
        tmp_path, RESTOCK_ALEXA_VERIFY="off", RESTOCK_PUBLIC_URL="https://shop.example"
    )
    result = run_cli(["run"], env, timeout=60)
    assert result.returncode == 2
    assert "RESTOCK_ALEXA_VERIFY" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_never_creates_the_demo_store(tmp_path: Path) -> None:
    """`simulate` without --client-id on a database with no demo store exits 2 and seeds nothing."""
    env = restock_env(tmp_path)
    assert run_cli(["migrate"], env).returncode == 0
    result = run_cli(["simulate", "button", "--hub", "coap://127.0.0.1:9"], env, timeout=60)
    assert result.returncode == 2 and "--client-id" in result.stderr
    assert _count(env["DATABASE_URL"], Store) == 0
