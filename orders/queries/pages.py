"""Keyset pagination: a page of rows plus an opaque cursor for the next one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import selectinload

from orders.domain.errors import InvalidRequest
from orders.queries.snapshots import OrderView
from orders.store.db import Database
from orders.store.model import STATUSES, Order

T = TypeVar("T")

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; `next_cursor` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None


def clamp_limit(limit: int | None) -> int:
    """A page size between 1 and MAX_LIMIT."""
    return DEFAULT_LIMIT if limit is None else max(1, min(int(limit), MAX_LIMIT))


def page_of(rows: Sequence[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    """Cut `rows` (fetched with limit+1) to a page; the cursor points after its last row."""
    items = tuple(rows[:limit])
    more = len(rows) > limit
    return Page(items, cursor_of(items[-1]) if more and items else None)


def id_cursor(text: str | None) -> int | None:
    """An integer-id cursor from a query string, or None; InvalidRequest when garbled."""
    if not text:
        return None
    # Row ids are INTEGER: a larger cursor is no row's, and PostgreSQL would refuse it.
    if not text.isdigit() or len(text) > 10 or int(text) > MAX_ROW_ID:
        raise InvalidRequest("bad_cursor", "that page cursor is not valid")
    return int(text)


def time_cursor(text: str | None) -> tuple[datetime, str] | None:
    """A `(created_at, id)` cursor from `<epoch microseconds>.<id>`, or None."""
    if not text:
        return None
    micros, _, key = text.partition(".")
    if not micros.isdigit() or len(micros) > 20 or not key or len(key) > 64:
        raise InvalidRequest("bad_cursor", "that page cursor is not valid")
    try:
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidRequest("bad_cursor", "that page cursor is not valid") from exc
    return moment, key


def encode_time_cursor(moment: datetime, key: str) -> str:
    """The cursor text for a row created at `moment` with id `key`."""
    micros = int(moment.timestamp()) * 1_000_000 + moment.microsecond
    return f"{micros}.{key}"


def orders_page(
    db: Database,
    *,
    store_id: int | None = None,
    shopper_id: int | None = None,
    device_id: int | None = None,
    status: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int | None = None,
    test: bool | None = None,
) -> Page[OrderView]:
    """Orders of one store, shopper or device (at least one is required), newest first.

    `since`: only orders created at or after it; `test`: only test orders, or none of them.
    """
    if store_id is None and shopper_id is None and device_id is None:
        raise InvalidRequest("no_owner", "orders are listed for a store, shopper or device")
    if status is not None and status not in STATUSES:
        raise InvalidRequest("bad_status", f"status must be one of {', '.join(STATUSES)}")
    size = clamp_limit(limit)
    after = time_cursor(cursor)
    query: Select[Order] = select(Order).options(selectinload(Order.lines))
    if store_id is not None:
        query = query.where(Order.store_id == store_id)
    if shopper_id is not None:
        query = query.where(Order.shopper_id == shopper_id)
    if device_id is not None:
        query = query.where(Order.device_id == device_id)
    if status is not None:
        query = query.where(Order.status == status)
    if since is not None:
        query = query.where(Order.created_at >= since)
    if test is not None:
        query = query.where(Order.test.is_(test))
    if after is not None:
        moment, key = after
        # (created_at, id) is unique, so rows created in the same microsecond never
        # fall between two pages.
        query = query.where(
            or_(Order.created_at < moment, and_(Order.created_at == moment, Order.id < key))
        )
    query = query.order_by(Order.created_at.desc(), Order.id.desc()).limit(size + 1)
    with db.read() as session:
        rows = [OrderView.of(order) for order in session.scalars(query)]
    return page_of(rows, size, lambda o: encode_time_cursor(o.created_at, o.id))
