"""A check over the whole test run: no secret issued during it appears in any log line.

Every token, client secret, password and key Restock makes comes from `secrets`
(`token_urlsafe`/`token_hex`); the run records each one made by a maker of secrets, and
every log record (INFO and up, any logger, formatted as JSON with its extra fields) is
searched for them as it is emitted. The session fails at the end, naming the lines.
Log lines of child processes (tests/e2e) are not seen here; those tests check their own.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from typing import Any

import pytest

from restock.logs import JsonFormatter, RequestIdFilter

# Modules whose `secrets` calls make secrets (others make ids: order ids, client ids, dialogs).
SECRET_MAKERS = frozenset({"auth.passwords", "auth.tokens", "restock.seed", "restock.settings"})
# Below this many random bytes, a value is an id, unless a secret maker made it.
SECRET_BYTES = 32
MAX_SHOWN = 5


class LeakWatch(logging.Handler):
    """Records secrets as they are made, and the log lines that contain one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.issued: dict[int, set[str]] = {}  # by length, for a sliding-window search
        self.leaks: list[str] = []
        self.addFilter(RequestIdFilter())
        self.setFormatter(JsonFormatter())

    def issue(self, value: str) -> None:
        """Remember a secret just made."""
        self.issued.setdefault(len(value), set()).add(value)

    def leaked(self, line: str) -> bool:
        """Whether `line` contains any secret made so far."""
        for size, values in self.issued.items():
            for start in range(len(line) - size + 1):
                if line[start : start + size] in values:
                    return True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        """Search the record as it would be logged (message, extras and traceback)."""
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is searched by its message
            line = str(record.msg)
        if self.leaked(line):
            self.leaks.append(line)


WATCH = LeakWatch()


def _recording(make: Callable[..., str]) -> Callable[..., str]:
    def made(nbytes: int | None = None) -> str:
        value = make(nbytes)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller in SECRET_MAKERS or (nbytes or SECRET_BYTES) >= SECRET_BYTES:
            WATCH.issue(value)
        return value

    return made


def pytest_configure(config: pytest.Config) -> None:
    """Record secrets from here on and watch every log line of the run."""
    if getattr(secrets, "_restock_watched", False):
        return
    # Looked up as `secrets.token_urlsafe(...)` at each call, so replacing them here counts.
    secrets.token_urlsafe = _recording(secrets.token_urlsafe)  # type: ignore[assignment]
    secrets.token_hex = _recording(secrets.token_hex)  # type: ignore[assignment]
    secrets._restock_watched = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    root.addHandler(WATCH)
    # INFO lines too (access lines, startup); SQLAlchemy's INFO would log every statement.
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)


def pytest_sessionfinish(session: pytest.Session, exitstatus: Any) -> None:
    """Fail the run if any log line carried a secret it issued."""
    if not WATCH.leaks:
        return
    shown = "\n".join(WATCH.leaks[:MAX_SHOWN])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"SECRETS IN LOGS: {len(WATCH.leaks)} log line(s) carry an issued secret:\n{shown}",
            red=True,
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
