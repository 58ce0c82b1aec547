"""The compose topology as plain processes: each role a `python -m restock …` of its own."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.auth_helpers import browser_link, browser_sign_in
from tests.e2e.conftest import ROOT

VERIFICATION = re.compile(r"\(or open (\S+)\)")


def has_role(name: str) -> bool:
    """True when this checkout's CLI has the subcommand `name`."""
    probe = subprocess.run(
        [sys.executable, "-m", "restock", name, "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return probe.returncode == 0


@dataclass
class Role:
    """One running process of the topology; its output goes to a log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    stopped: bool = field(default=False)

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit status (killed after `timeout`)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.stopped = True


def start_role(name: str, args: list[str], env: dict[str, str], logs: Path) -> Role:
    """Start `python ARGS` as the role `name`."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    return Role(name, proc, log)


def wait_until(role: Role, ready: str | None = None, url: str | None = None) -> None:
    """Wait until `role` prints `ready` or answers 200 at `url`; fail if it exits first."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if not role.alive():
            pytest.fail(f"{role.name} exited ({role.proc.returncode}):\n{role.output()}")
        if ready is not None and ready in role.output():
            return
        if url is not None:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # still starting, or slow
                pass
        time.sleep(0.2)
    pytest.fail(f"{role.name} was not ready within 90 s:\n{role.output()}")


def link_and_press(
    hub: str, client_id: str, serial: str, env: dict[str, str], web: str, login: tuple[str, str]
) -> str:
    """A simulated button links (approved by the shopper signed in at `web`) and presses twice.

    Returns what the simulator printed.
    """
    device = subprocess.Popen(
        [sys.executable, "-m", "restock", "simulate", "button", "--hub", hub,
         "--client-id", client_id, "--serial", serial, "--pause", "0", "--presses", "2"],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    printed = ""
    try:
        assert device.stdout is not None
        for line in device.stdout:
            printed += line
            match = VERIFICATION.search(line)
            if match:
                browser = browser_sign_in(web, *login)
                browser_link(browser, match.group(1), "approve", "BAT-AA-8")
                break
        else:
            pytest.fail(f"the simulator ended without a verification link:\n{printed}")
        rest, _ = device.communicate(timeout=90)
        printed += rest
        assert device.returncode == 0, printed
        return printed
    finally:
        if device.poll() is None:
            device.kill()
            device.wait()
        if device.stdout:
            device.stdout.close()
