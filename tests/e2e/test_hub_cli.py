"""`run`, `hub` and `simulate` as an operator and a device maker use them."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from auth.device_flow import decide_device
from auth.model import Account
from orders.services.devices import LinkRules
from orders.store.db import Database, make_engine
from restock.seed import SHOPPER_EMAIL
from tests.e2e.conftest import ROOT, coap_answers, free_port, restock_env, run_cli

CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")


def _simulate(env: dict[str, str], kind: str, coap_port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "restock", "simulate", kind, "--hub",
         f"coap://127.0.0.1:{coap_port}", "--serial", f"SIM-{kind}", "--pause", "0",
         "--presses", "2", "--reports", "5"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _read_until(proc: subprocess.Popen[str], pattern: re.Pattern[str]) -> tuple[str, str]:
    seen = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        seen += line
        match = pattern.search(line)
        if match:
            return match.group(1), seen
    pytest.fail(f"simulator ended without {pattern.pattern!r}:\n{seen}")


@pytest.mark.e2e
def test_run_answers_coap_and_simulated_devices_link_and_order(
    running_restock: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    """`run` serves CoAP; a simulated button and coffee machine link, then order once each."""
    _base, server = running_restock
    coap_port = server.coap_port  # type: ignore[attr-defined]
    assert coap_answers(coap_port)
    env = restock_env(tmp_path)
    button, machine = _simulate(env, "button", coap_port), _simulate(env, "appliance", coap_port)
    db = Database(make_engine(env["DATABASE_URL"]))
    try:
        with db.read() as session:
            shopper = session.scalars(
                select(Account.id).where(Account.email == SHOPPER_EMAIL)
            ).one()
        seen = []
        for proc, rules in ((button, LinkRules(product_sku="BAT-AA-8")), (machine, None)):
            user_code, printed = _read_until(proc, CODE)
            assert "/link" in printed
            decide_device(db, user_code=user_code, account_id=shopper, approve=True, rules=rules)
            seen.append(printed)
        outputs = []
        for proc, printed in zip((button, machine), seen, strict=True):
            out, _ = proc.communicate(timeout=60)
            outputs.append(printed + out)
            assert proc.returncode == 0, printed + out
    finally:
        for proc in (button, machine):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        db.dispose()
    pressed, reported = outputs
    assert "press 1: 2.01 placed" in pressed and "press 2: 2.01 in_progress" in pressed
    assert "level 50 count: 2.04 none" in reported
    # 50, 38, 26, 14, 2: the default reorder point is a fifth of the 50-pod capacity.
    assert "level 14 count: 2.04 none" in reported and "level 2 count: 2.04 ordered" in reported


@pytest.mark.e2e
def test_hub_subcommand_serves_coap_only_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`hub`: CoAP answers, no HTTP port is opened, SIGTERM exits 0."""
    env = restock_env(tmp_path)
    assert run_cli(["migrate"], env).returncode == 0
    coap, http = free_port(socket.SOCK_DGRAM), free_port()
    env.update(RESTOCK_COAP=f"127.0.0.1:{coap}", RESTOCK_HTTP=f"127.0.0.1:{http}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "restock", "hub"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert coap_answers(coap, timeout=30)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", http)) != 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = ""
    if proc.stdout:
        output = proc.stdout.read()
        proc.stdout.close()
    assert f"coap://127.0.0.1:{coap}" in output


def test_simulate_without_a_hub_or_client_says_why(tmp_path: Path) -> None:
    """No database to take a demo client from and no --client-id: exit 2 with a reason."""
    env = restock_env(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    started = time.monotonic()
    result = run_cli(["simulate", "button", "--hub", "coap://127.0.0.1:9"], env, timeout=60)
    assert result.returncode == 2 and "--client-id" in result.stderr
    assert time.monotonic() - started < 60
