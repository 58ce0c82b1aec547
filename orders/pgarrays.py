"""Binary array parameters for psycopg, fast for the flat lists Restock's statements send.

Every pipelined statement of a press batch (orders/flights.py) passes its values as arrays:
`= ANY(:ids)` lookups and one array per column of an `INSERT … SELECT unnest(…)`. A batch
sends about forty of them. psycopg's own binary list dumper is general (nested lists, any
element type, the smallest integer type that fits) and pays for it on every list: it
finds an element to type the list by, looks the element's dumper up, works out the
dimensions, then dumps element by element in Python. In a press batch that was about a
quarter of the writer thread's CPU (cProfile, bench/hub.py on PostgreSQL).

`FlatListDumper` takes the common case itself: a one-dimensional list whose elements are
all int, all bool, all str (or None) or all timezone-aware datetimes. Integers are packed
by C code (array/struct) rather than one call per element. Anything else (nested lists,
mixed types, naive datetimes, Decimal, JSON, empty lists) goes to psycopg's dumper
unchanged.

Types chosen:
- int: int4[] when every value fits 32 bits, else int8[] (psycopg would pick int2[] for
  small values, which PostgreSQL then converts to the INTEGER[] our statements cast to);
- str: text[] (as psycopg does); bool: bool[];
- aware datetime: timestamptz[] (microseconds since 2000-01-01 UTC, PostgreSQL's format).
"""

from __future__ import annotations

import struct
import sys
from array import array
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from psycopg import pq
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper
from psycopg.types.array import ListBinaryDumper

_INT4, _INT8, _TEXT, _BOOL, _TIMESTAMPTZ = 23, 20, 25, 16, 1184
_ARRAY_OF = {_INT4: 1007, _INT8: 1016, _TEXT: 1009, _BOOL: 1000, _TIMESTAMPTZ: 1185}
# ndim, has-null flag, element type, then (size, lower bound) of the one dimension.
_HEAD = struct.Struct("!iiiii")
_LENGTH = struct.Struct("!i").pack
_NULL = _LENGTH(-1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT4_RANGE = range(-(2**31), 2**31)
_INT8_RANGE = range(-(2**63), 2**63)
_SWAP = sys.byteorder == "little"
_NONE = type(None)


def flat_kind(values: list[Any]) -> int | None:
    """The element type `FlatListDumper` sends `values` as, or None to leave it to psycopg."""
    if not values:
        return None
    kinds = set(map(type, values))
    if kinds == {int}:
        if min(values) in _INT4_RANGE and max(values) in _INT4_RANGE:
            return _INT4
        if min(values) in _INT8_RANGE and max(values) in _INT8_RANGE:
            return _INT8
        return None  # numeric: psycopg's
    kinds.discard(_NONE)
    if kinds == {str}:
        return _TEXT
    if kinds == {bool}:
        return _BOOL
    if kinds == {datetime} and all(v is None or v.tzinfo is not None for v in values):
        return _TIMESTAMPTZ
    return None


class FlatListDumper(ListBinaryDumper):
    """psycopg's binary list dumper, with flat lists of common types handled quickly."""

    # psycopg asks `get_key` for a list, then (unless that key's dumper is cached, and a
    # cursor's cache starts empty) `upgrade` for the same list: upgrade reuses the kind
    # get_key just found. get_key always looks afresh: a caller may refill a list.
    _kind_of: tuple[list[Any] | None, int | None] = (None, None)

    def get_key(self, obj: list[Any], format: Any) -> Any:
        kind = flat_kind(obj)
        self._kind_of = (obj, kind)
        if kind is None:
            return super().get_key(obj, format)
        return (FlatListDumper, kind)

    def upgrade(self, obj: list[Any], format: Any) -> Any:
        last, kind = self._kind_of
        self._kind_of = (None, None)
        if last is not obj:
            kind = flat_kind(obj)
        if kind is None:
            return super().upgrade(obj, format)
        return _DUMPERS[kind](list, self._tx)


class _FlatDumper(Dumper):
    format = pq.Format.BINARY
    element = 0

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        self.oid = _ARRAY_OF[self.element]

    def head(self, size: int, hasnull: int) -> bytes:
        return _HEAD.pack(1, hasnull, self.element, size, 1)


@lru_cache(maxsize=256)
def _four_bytes_each(size: int) -> array:  # type: ignore[type-arg]
    """[4, 0, 4, 0, …]: each int4 element's length word, with room for its value."""
    return array("i", (4, 0) * size)


class _Int4(_FlatDumper):
    element = _INT4

    def dump(self, obj: list[int]) -> bytes:
        body = array("i", _four_bytes_each(len(obj)))
        body[1::2] = array("i", obj)
        if _SWAP:
            body.byteswap()
        return self.head(len(obj), 0) + body.tobytes()


@lru_cache(maxsize=256)
def _length_and_int8(size: int) -> struct.Struct:
    return struct.Struct("!" + "iq" * size)


class _Int8(_FlatDumper):
    element = _INT8

    def dump(self, obj: list[int]) -> bytes:
        values = [part for value in obj for part in (8, value)]
        return self.head(len(obj), 0) + _length_and_int8(len(obj)).pack(*values)


class _Bool(_FlatDumper):
    element = _BOOL

    def dump(self, obj: list[bool | None]) -> bytes:
        parts = [self.head(len(obj), int(None in obj))]
        for value in obj:
            parts.append(_NULL if value is None else _TRUE if value else _FALSE)
        return b"".join(parts)


class _Text(_FlatDumper):
    element = _TEXT

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        # Binary text goes in the connection's client encoding, as psycopg's own sends it.
        self.encoding = self.connection.info.encoding if self.connection else "utf-8"

    def dump(self, obj: list[str | None]) -> bytes:
        parts = [self.head(len(obj), int(None in obj))]
        encoding = self.encoding
        for value in obj:
            if value is None:
                parts.append(_NULL)
            else:
                data = value.encode(encoding)
                parts.append(_LENGTH(len(data)))
                parts.append(data)
        return b"".join(parts)


class _Timestamptz(_FlatDumper):
    element = _TIMESTAMPTZ

    def dump(self, obj: list[datetime | None]) -> bytes:
        parts = [self.head(len(obj), int(None in obj))]
        last: datetime | None = None
        packed = b""
        for value in obj:
            if value is None:
                parts.append(_NULL)
                continue
            if value is not last:  # a batch's rows mostly share one `now`
                last = value
                packed = _LENGTH_8 + _MICROSECONDS((value - _PG_EPOCH) // _MICROSECOND)
            parts.append(packed)
        return b"".join(parts)


_TRUE = _LENGTH(1) + b"\x01"
_FALSE = _LENGTH(1) + b"\x00"
_LENGTH_8 = _LENGTH(8)
_MICROSECONDS = struct.Struct("!q").pack
_DUMPERS: dict[int, type[_FlatDumper]] = {
    _INT4: _Int4,
    _INT8: _Int8,
    _TEXT: _Text,
    _BOOL: _Bool,
    _TIMESTAMPTZ: _Timestamptz,
}
