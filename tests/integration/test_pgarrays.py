"""Flat list parameters (orders/pgarrays.py): what PostgreSQL receives is what psycopg's
own binary list dumper would have sent, element for element."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.types.array import ListBinaryDumper

from orders.pgarrays import FlatListDumper, flat_kind
from tests.conftest import Backend

TOKYO = timezone(timedelta(hours=9))
# (values, the array type PostgreSQL must see)
FLAT: list[tuple[list[Any], str]] = [
    ([1, 2, -3, 2**31 - 1, -(2**31)], "integer[]"),
    ([7], "integer[]"),
    ([2**31, -5, 2**63 - 1, -(2**63)], "bigint[]"),
    (["a", None, "é'\"{},\\", "", "多言語"], "text[]"),
    ([True, False, None], "boolean[]"),
    (
        [
            datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=UTC),
            None,
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=TOKYO),
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2026, 12, 1, 20, 0, 0, 123456, tzinfo=UTC),
        ],
        "timestamp with time zone[]",
    ),
]
# Left to psycopg: nested, mixed, NULL among ints, naive times, Decimal, past int8.
OTHERS: list[list[Any]] = [
    [[1, 2], [3, 4]],
    [1, None, 3],
    [datetime(2026, 1, 1), datetime(2026, 1, 2)],
    [Decimal("1.50"), Decimal("2")],
    [2**63, 1],
    [1.5, -0.25],
]


@pytest.fixture
def conn(postgresql_backend: Backend) -> Iterator[psycopg.Connection[Any]]:
    url = postgresql_backend.engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as c:
        yield c


def _sent(conn: psycopg.Connection[Any], dumper: type, values: list[Any]) -> tuple[Any, str]:
    """What the server received (read back) and its type, with `dumper` for lists."""
    conn.adapters.register_dumper(list, dumper)
    row = conn.execute("SELECT %b, pg_typeof(%b)::text", (values, values)).fetchone()
    assert row is not None
    return row[0], row[1]


def test_flat_kinds_are_recognised_and_everything_else_is_left_alone() -> None:
    assert [flat_kind(values) for values, _ in FLAT] == [23, 23, 20, 25, 16, 1184]
    assert [flat_kind(values) for values in OTHERS] == [None] * len(OTHERS)
    assert flat_kind([]) is None
    assert flat_kind([None, None]) is None  # nothing to type it by: psycopg decides
    assert flat_kind([True, 1]) is None  # bool is an int subclass; mixed is not flat


@pytest.mark.postgres
@pytest.mark.parametrize(("values", "pg_type"), FLAT, ids=[t for _, t in FLAT])
def test_flat_lists_arrive_as_psycopg_would_send_them(
    conn: psycopg.Connection[Any], values: list[Any], pg_type: str
) -> None:
    ours, our_type = _sent(conn, FlatListDumper, values)
    theirs, _ = _sent(conn, ListBinaryDumper, values)
    assert our_type == pg_type
    assert ours == theirs == values


@pytest.mark.postgres
@pytest.mark.parametrize("values", OTHERS, ids=repr)
def test_other_lists_go_through_psycopgs_dumper(
    conn: psycopg.Connection[Any], values: list[Any]
) -> None:
    assert _sent(conn, FlatListDumper, values) == _sent(conn, ListBinaryDumper, values)


@pytest.mark.postgres
def test_text_goes_in_the_connections_client_encoding(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET client_encoding TO 'LATIN1'")
    values = ["café", "naïve", None]
    ours, _ = _sent(conn, FlatListDumper, values)
    assert ours == values
    assert conn.execute("SELECT length(%b[1])", (values,)).fetchone() == (4,)


@pytest.mark.postgres
def test_a_list_refilled_between_executions_is_typed_by_what_it_holds_now(
    conn: psycopg.Connection[Any],
) -> None:
    """One cursor keeps the dumpers it found; the same list refilled is still looked at."""
    conn.adapters.register_dumper(list, FlatListDumper)
    cursor = conn.cursor()
    values: list[Any] = [1, 2]
    sent = []
    for refill in ([1, 2], [2**40, 3], [2**40, 4], ["a", None], ["b", "c"]):
        values[:] = refill
        sent.append(cursor.execute("SELECT %b, pg_typeof(%b)::text", (values, values)).fetchone())
    assert sent == [
        ([1, 2], "integer[]"), ([2**40, 3], "bigint[]"), ([2**40, 4], "bigint[]"),
        (["a", None], "text[]"), (["b", "c"], "text[]"),
    ]  # fmt: skip
