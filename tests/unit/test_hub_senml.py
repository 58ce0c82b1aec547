"""SenML (RFC 8428) resolution and validation, without a database."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.errors import InvalidRequest
from orders.domain.senml import MAX_RECORDS, parse_pack

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_base_name_and_name_concatenate_and_the_slot_is_the_name() -> None:
    """`bn` + `n` is the resolved name; the slot is the part after the base name."""
    [reading] = parse_pack([{"bn": "urn:dev:ow:10e2073a0108006:", "n": "pods", "v": 12}], now=NOW)
    assert reading.slot == "pods" and reading.value == 12.0


def test_base_time_plus_relative_time_is_relative_to_now() -> None:
    """Times below 2**28 are relative to now: bt=-60, t=-30 is 90 s ago."""
    readings = parse_pack(
        [{"bt": -60, "n": "pods", "v": 3, "t": -30}, {"n": "pods", "v": 2}], now=NOW
    )
    assert readings[0].measured_at == NOW - timedelta(seconds=90)
    assert readings[1].measured_at == NOW - timedelta(seconds=60)


def test_absolute_times_are_seconds_since_the_epoch() -> None:
    """bt at or above 2**28 is an absolute POSIX time."""
    at = NOW - timedelta(hours=1)
    [reading] = parse_pack([{"bt": at.timestamp(), "n": "pods", "v": 1}], now=NOW)
    assert reading.measured_at == at


def test_cbor_integer_labels_mean_the_same_fields() -> None:
    """RFC 8428 §6: -2 bn, -3 bt, -4 bu, 0 n, 1 u, 2 v, 6 t."""
    [reading] = parse_pack([{-2: "m:", -3: -10, -4: "count", 0: "pods", 2: 7, 6: -5}], now=NOW)
    assert (reading.slot, reading.value, reading.unit) == ("pods", 7.0, "count")
    assert reading.measured_at == NOW - timedelta(seconds=15)


def test_base_value_is_added_to_each_value() -> None:
    """`bv` offsets every value."""
    [reading] = parse_pack([{"bv": 10, "n": "pods", "v": 2.5}], now=NOW)
    assert reading.value == 12.5


def test_a_record_of_base_fields_only_sets_context() -> None:
    """A leading record with only base fields yields no reading of its own."""
    readings = parse_pack([{"bn": "", "bu": "%"}, {"n": "black_ink", "v": 40}], now=NOW)
    assert len(readings) == 1 and readings[0].unit == "%"


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        ([{"n": "pods", "v": math.nan}], "bad_number"),
        ([{"n": "pods", "v": math.inf}], "bad_number"),
        ([{"n": "pods", "v": -1}], "negative_level"),
        ([{"bv": 1e308, "n": "pods", "v": 1e308}], "bad_number"),
        ([{"n": "pods", "v": 10**400}], "bad_number"),
        ([{"n": "pods", "v": True}], "bad_senml"),
        ([{"n": "pods", "v": "3"}], "bad_senml"),
        ([{"n": "pods", "vs": "low", "v": 1}], "bad_senml"),
        ([{"n": "descale", "vb": 1}], "bad_senml"),
        ([{"n": "error", "vs": 42}], "bad_senml"),
        ([{"n": "pods", "v": 1, "t": 3600}], "future_time"),
        ([{"n": "pods", "v": 1, "bt": 4_000_000_000}], "future_time"),
        ([{"n": "pods", "v": 1, "t": -1e300}], "bad_time"),
        ([{"n": "pods", "v": 1, "x_": 1}], "bad_senml"),
        ([{"n": "pods", "v": 1, 99: 1}], "bad_senml"),
        ([{"n": " pods", "v": 1}], "bad_name"),
        ([{"v": 1}], "bad_name"),
        ([{"n": "pods"}], "bad_senml"),
        ([{"bver": 99, "n": "pods", "v": 1}], "bad_senml"),
        ([], "bad_senml"),
        ({"n": "pods", "v": 1}, "bad_senml"),
        ("pods", "bad_senml"),
        ([1], "bad_senml"),
        ([{"n": "pods", "v": 1}] * (MAX_RECORDS + 1), "too_many_records"),
    ],
)
def test_bad_packs_are_refused_with_a_reason(pack: object, reason: str) -> None:
    """NaN/inf, negative levels, wrong types, future times, must-understand labels, size."""
    with pytest.raises(InvalidRequest) as refused:
        parse_pack(pack, now=NOW)
    assert refused.value.reason == reason


def test_a_full_pack_of_256_records_is_accepted() -> None:
    """The limit itself is allowed."""
    assert len(parse_pack([{"n": "pods", "v": 1}] * MAX_RECORDS, now=NOW)) == MAX_RECORDS


def test_unknown_extension_labels_are_ignored() -> None:
    """§4.4: labels not ending in `_` may be ignored by a receiver."""
    [reading] = parse_pack([{"n": "pods", "v": 1, "colour": "red"}], now=NOW)
    assert reading.value == 1.0


def test_conditions_may_report_booleans_and_strings() -> None:
    """`vb` and `vs` resolve to a flag and a text; plain `v` records stay numbers."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    descale, error, level = parse_pack(
        [{"n": "descale", "vb": True}, {"n": "error", "vs": "E42"}, {"n": "pods", "v": 3}],
        now=now,
    )
    assert (descale.flag, descale.value, descale.is_number) == (True, 1.0, False)
    assert (error.text, error.is_number) == ("E42", False)
    assert level.is_number and level.flag is None
