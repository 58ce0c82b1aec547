"""The run-wide log check itself: it finds an issued secret in a log line, and only then."""

from __future__ import annotations

import logging

from tests.log_secrets import LeakWatch


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"msg": message, "levelno": logging.INFO, "levelname": "INFO"})
    record.__dict__.update(extra)
    return record


def test_a_line_carrying_an_issued_secret_is_caught() -> None:
    """In the message or in an extra field: both count as the line carrying it."""
    watch = LeakWatch()
    watch.issue("s3cret-token-value-0123456789abcdefghijklmnop")
    watch.handle(_record("login with Bearer s3cret-token-value-0123456789abcdefghijklmnop ok"))
    watch.handle(_record("no secret here", header="s3cret-token-value-0123456789abcdefghijklmnop"))
    watch.handle(_record("nothing to see"))
    assert len(watch.leaks) == 2


def test_the_run_records_tokens_that_auth_issues() -> None:
    """A token made by auth.tokens is among the secrets the run watches for."""
    from auth.tokens import new_secret
    from tests.log_secrets import WATCH

    token = new_secret()
    assert token in WATCH.issued.get(len(token), set())
