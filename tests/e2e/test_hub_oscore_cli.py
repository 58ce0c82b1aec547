"""`simulate button --oscore` against `hub` processes: it links, keys itself at /authz-info,
and keeps pressing through a hub killed with SIGKILL and through its own restart."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from auth.device_flow import decide_device
from auth.model import Account
from orders.services.devices import LinkRules
from orders.store.db import Database, make_engine
from orders.store.model import Order
from restock.seed import SHOPPER_EMAIL
from tests.e2e.conftest import ROOT, coap_answers, free_port, restock_env, run_cli

CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")


def _hub(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "restock", "hub"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    port = int(env["RESTOCK_COAP"].rsplit(":", 1)[1])
    assert coap_answers(port, timeout=30)
    return proc


def _simulate(env: dict[str, str], state: Path, presses: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "restock", "simulate", "button", "--oscore", "--hub",
         env["RESTOCK_COAP_URI"], "--serial", "SIM-OSC", "--pause", "2",
         "--presses", str(presses), "--state", str(state)],
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


def _stop(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.mark.e2e
def test_an_oscore_button_presses_through_a_killed_hub_and_its_own_restart(
    tmp_path: Path,
) -> None:
    """Press 1, SIGKILL the hub, start another on the same port: presses 2 and 3 answer
    2.01. Then the simulator restarts from its stored token: re-keyed, press 1 of a new boot."""
    coap = free_port(socket.SOCK_DGRAM)
    env = restock_env(tmp_path, RESTOCK_COAP=f"127.0.0.1:{coap}")
    env["RESTOCK_COAP_URI"] = f"coap://127.0.0.1:{coap}"
    assert run_cli(["migrate"], env).returncode == 0
    assert run_cli(["seed", "--demo"], env).returncode == 0
    state = tmp_path / "device.json"
    db = Database(make_engine(env["DATABASE_URL"]))
    hub = _hub(env)
    device = _simulate(env, state, presses=3)
    procs = [hub, device]
    try:
        user_code, printed = _read_until(device, CODE)
        with db.read() as session:
            shopper = session.scalars(
                select(Account.id).where(Account.email == SHOPPER_EMAIL)
            ).one()
        decide_device(db, user_code=user_code, account_id=shopper, approve=True,
                      rules=LinkRules(product_sku="BAT-AA-8"))  # fmt: skip
        _, more = _read_until(device, re.compile(r"(press 1: .*)"))
        printed += more
        hub.kill()  # SIGKILL: nothing is flushed, nothing is said goodbye
        hub.wait()
        hub = _hub(env)
        procs.append(hub)
        out, _ = device.communicate(timeout=180)
        printed += out
        assert device.returncode == 0, printed
        assert "OSCORE context established" in printed
        for press in (1, 2, 3):
            assert re.search(rf"press {press}: 2\.01 (placed|in_progress|duplicate)", printed)

        again = _simulate(env, state, presses=1)
        procs.append(again)
        out, _ = again.communicate(timeout=120)
        assert again.returncode == 0, out
        assert "restarted: using the stored token" in out and "enter the code" not in out
        assert re.search(r"press 1: 2\.01 (placed|in_progress)", out), out
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Order)) == 1
    finally:
        _stop(*procs)
        db.dispose()
