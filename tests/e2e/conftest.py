"""Helpers for end-to-end tests: free ports and a real `python -m restock` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the OS says is free right now (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def restock_env(tmp_path: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a Restock process that keeps everything under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESTOCK_")}
    env.update(
        DATABASE_URL=database_url or f"sqlite:///{tmp_path / 'restock.db'}",
        RESTOCK_VAR_DIR=str(tmp_path / "var"),
        RESTOCK_MDNS="off",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m restock ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "restock", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def coap_answers(port: int, timeout: float = 10) -> bool:
    """True when a CoAP GET /.well-known/core to 127.0.0.1:`port` gets a 2.05."""
    # Hand-built CON GET (RFC 7252 §3): ver 1, no token, Uri-Path ".well-known" / "core".
    request = bytes([0x40, 0x01, 0x12, 0x34, 0xBB]) + b".well-known" + bytes([0x04]) + b"core"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        while time.monotonic() < deadline:
            sock.sendto(request, ("127.0.0.1", port))
            try:
                answer = sock.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                continue
            return len(answer) >= 4 and answer[1] == 0x45 and answer[2:4] == b"\x12\x34"
    return False


@pytest.fixture
def running_restock(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python -m restock run --demo` (as `make run`) on free ports; yields base URL and process."""
    yield from start_restock(tmp_path, "--demo")


def start_restock(
    tmp_path: Path, *run_args: str, database_url: str | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start `python -m restock run RUN_ARGS` on free ports; yield once it answers HTTP and CoAP."""
    http, coap = free_port(), free_port(socket.SOCK_DGRAM)
    env = restock_env(tmp_path, database_url, RESTOCK_HTTP=f"127.0.0.1:{http}",
                      RESTOCK_COAP=f"127.0.0.1:{coap}")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "restock", "run", *run_args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"restock run exited early ({proc.returncode}):\n{out}")
        try:
            if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("restock run did not answer /healthz within 60 s")
    if not coap_answers(coap):
        proc.kill()
        pytest.fail("restock run serves HTTP but its CoAP hub does not answer")
    proc.coap_port = coap  # type: ignore[attr-defined]
    try:
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
