"""The `hub` and `web` roles as separate real processes: graceful SIGTERM, metrics, JSON logs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
import requests
from aiocoap import Context, Message
from aiocoap.numbers.codes import Code
from sqlalchemy import select

from orders.store.db import Database, make_engine
from orders.store.model import Press
from tests.e2e.conftest import ROOT, coap_answers, free_port, restock_env, run_cli
from tests.e2e.hub_fixtures import build_devices

METRICS_TOKEN = "metrics-token-e2e-0123456789abcdef"


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "restock", *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[tuple[dict[str, str], Database]]:
    """A migrated SQLite file, its environment and a Database on it."""
    env = restock_env(tmp_path)
    done = run_cli(["migrate"], env)
    assert done.returncode == 0, done.stderr
    db = Database(make_engine(env["DATABASE_URL"]))
    yield env, db
    db.dispose()


async def _presses_then_sigterm(
    port: int, token: str, proc: subprocess.Popen[str], count: int
) -> dict[int, Code | None]:
    """Send `count` presses at once; SIGTERM the hub on the first answer; collect all answers."""
    # One client (one socket) per press: a client sends one confirmable request at a time
    # to a server (NSTART 1), and these must all be in flight together.
    contexts = [await Context.create_client_context() for _ in range(count)]
    try:

        async def press(seq: int) -> Code:
            body = cbor2.dumps({"at": token, "seq": seq, "boot": f"b{seq}"})
            message = Message(code=Code.POST, uri=f"coap://127.0.0.1:{port}/press", payload=body)
            message.opt.content_format = 60
            return (await contexts[seq - 1].request(message).response).code

        tasks = {seq: asyncio.ensure_future(press(seq)) for seq in range(1, count + 1)}
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        proc.send_signal(signal.SIGTERM)
        # A press the hub never answered is retransmitted until it gives up: not acknowledged.
        await asyncio.wait(tasks.values(), timeout=15)
        answers: dict[int, Code | None] = {}
        for seq, task in tasks.items():
            if task.done() and task.exception() is None:
                answers[seq] = task.result()
            else:
                task.cancel()
                answers[seq] = None
        return answers
    finally:
        for context in contexts:
            await context.shutdown()


@pytest.mark.e2e
def test_sigterm_to_the_hub_loses_no_acknowledged_press(
    migrated: tuple[dict[str, str], Database],
) -> None:
    """Presses in flight at SIGTERM: each 2.01 is in the database, the rest 5.03 or unanswered."""
    env, db = migrated
    devices = build_devices(db)
    port = free_port(socket.SOCK_DGRAM)
    hub = _start(["hub"], {**env, "RESTOCK_COAP": f"127.0.0.1:{port}"})
    try:
        assert coap_answers(port), "the hub did not answer"
        answers = asyncio.run(_presses_then_sigterm(port, devices.button_token, hub, 10))
    finally:
        code, out, err = _finish(hub)
    assert code == 0, out + err
    acknowledged = {seq for seq, answer in answers.items() if answer == Code.CREATED}
    assert acknowledged, answers
    assert all(
        answer in (Code.CREATED, Code.SERVICE_UNAVAILABLE, None) for answer in answers.values()
    ), answers
    with db.read() as session:
        stored = set(
            session.scalars(select(Press.seq).where(Press.device_id == devices.world.device_id))
        )
    assert acknowledged <= stored, (acknowledged, stored)
    assert "Traceback" not in err, err


@pytest.mark.e2e
def test_the_web_role_serves_on_gunicorn_workers_with_metrics_and_json_logs(
    migrated: tuple[dict[str, str], Database],
) -> None:
    """`web --workers 2`: requests answered with ids, /metrics adds up the workers, JSON logs."""
    env, _db = migrated
    port = free_port()
    web = _start(
        ["web", "--workers", "2"],
        {**env, "RESTOCK_HTTP": f"127.0.0.1:{port}", "RESTOCK_METRICS_TOKEN": METRICS_TOKEN,
         "RESTOCK_LOG_FORMAT": "json"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and web.poll() is None:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or a worker still starting
                time.sleep(0.2)
        ready = requests.get(f"{base}/readyz", headers={"X-Request-Id": "e2e-ready"}, timeout=30)
        assert ready.status_code == 200 and ready.headers["X-Request-Id"] == "e2e-ready"
        for _ in range(6):  # spread over both workers
            assert requests.get(f"{base}/healthz", timeout=30).status_code == 200
        assert requests.get(f"{base}/metrics", timeout=30).status_code == 401
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        page = requests.get(f"{base}/metrics", headers=auth, timeout=30)
        assert page.status_code == 200
        served = [
            float(line.rsplit(" ", 1)[1])
            for line in page.text.splitlines()
            if line.startswith("restock_http_requests_total{") and 'route="/healthz"' in line
        ]
        assert sum(served) >= 7, page.text  # the first /healthz poll(s) and the six above
    finally:
        web.send_signal(signal.SIGTERM)
        code, out, err = _finish(web)
    assert code == 0, out + err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert all({"ts", "level", "event"} <= set(line) for line in lines)
    ready_lines = [line for line in lines if line.get("request_id") == "e2e-ready"]
    assert [line["path"] for line in ready_lines] == ["/readyz"]
    assert METRICS_TOKEN not in err + out
