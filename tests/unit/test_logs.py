"""Log lines: one JSON object each under RESTOCK_LOG_FORMAT=json, the request id on every one."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from orders.domain.ops import REQUEST_ID
from restock.logs import handler


@pytest.fixture
def json_lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer."""
    out = io.StringIO()
    logger = logging.getLogger("restock.test_logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler("json", out))
    yield logger, out
    logger.handlers.clear()
    logger.propagate = True


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_has_ts_level_event_and_the_logger(
    json_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    """Outside a request: ts, level, event (the formatted message), logger; no request_id."""
    logger, out = json_lines
    logger.warning("stock of %s is low", "PODS")
    (line,) = _lines(out)
    assert line["level"] == "warning" and line["event"] == "stock of PODS is low"
    assert line["logger"] == "restock.test_logs" and str(line["ts"]).endswith("+00:00")
    assert "request_id" not in line


def test_inside_a_request_every_line_carries_its_id(
    json_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    """With a request id set, each line names it; once reset, lines do not."""
    logger, out = json_lines
    token = REQUEST_ID.set("req-1")
    try:
        logger.info("one")
        logger.info("two", extra={"status": 201})
    finally:
        REQUEST_ID.reset(token)
    logger.info("three")
    lines = _lines(out)
    assert [line.get("request_id") for line in lines] == ["req-1", "req-1", None]
    assert lines[1]["status"] == 201


def test_an_exception_is_inside_the_same_json_line(
    json_lines: tuple[logging.Logger, io.StringIO],
) -> None:
    """A traceback does not break the one-object-per-line format."""
    logger, out = json_lines
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = _lines(out)
    assert line["level"] == "error" and "ValueError: boom" in str(line["exc"])


def test_text_lines_show_the_request_id_too() -> None:
    """The default text format puts the id in brackets ("-" outside a request)."""
    out = io.StringIO()
    logger = logging.getLogger("restock.test_logs_text")
    logger.propagate = False
    logger.addHandler(handler("text", out))
    try:
        token = REQUEST_ID.set("abc")
        logger.warning("inside")
        REQUEST_ID.reset(token)
        logger.warning("outside")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    inside, outside = out.getvalue().splitlines()
    assert "[abc]: inside" in inside and "[-]: outside" in outside
