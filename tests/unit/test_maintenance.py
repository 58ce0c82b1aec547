"""Maintenance rules on readings alone: which conditions are due, when a counted service is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.errors import InvalidRequest
from orders.domain.maintenance import judge, service_due_at
from orders.domain.senml import Reading

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def _reading(
    name: str, value: float = 0.0, flag: bool | None = None, text: str | None = None
) -> Reading:
    return Reading(name, value, None, NOW, flag, text)


@pytest.mark.parametrize(
    ("kind", "threshold", "reading", "due", "code"),
    [
        ("flag", None, _reading("descale", 1.0, flag=True), True, None),
        ("flag", None, _reading("descale", 0.0, flag=False), False, None),
        ("flag", None, _reading("descale", 2.0), True, None),
        ("percent", 10, _reading("filter_life", 10.0), True, None),
        ("percent", 10, _reading("filter_life", 10.5), False, None),
        ("counter", 300, _reading("cycles", 300.0), True, None),
        ("counter", 300, _reading("cycles", 299.0), False, None),
        ("code", None, _reading("error", text="E12"), True, "E12"),
        ("code", None, _reading("error", 7.0), True, "7"),
        ("code", None, _reading("error", 0.0), False, None),
        ("code", None, _reading("error", text=""), False, None),
    ],
)
def test_a_condition_is_due_by_its_kind(
    kind: str, threshold: float | None, reading: Reading, due: bool, code: str | None
) -> None:
    """Flags when true, percentages at or below, counters at or above, codes when non-zero."""
    state = judge(kind, threshold, reading)
    assert (state.active, state.code) == (due, code)


@pytest.mark.parametrize(
    ("kind", "reading"),
    [
        ("flag", _reading("descale", text="yes")),
        ("code", _reading("error", 1.0, flag=True)),
        ("percent", _reading("filter_life", 1.0, flag=True)),
        ("counter", _reading("cycles", text="12")),
    ],
)
def test_a_condition_of_the_wrong_type_is_bad_senml(kind: str, reading: Reading) -> None:
    """Each kind takes its own SenML value field."""
    with pytest.raises(InvalidRequest) as raised:
        judge(kind, 10, reading)
    assert raised.value.reason == "bad_senml"


def test_a_steady_counter_predicts_when_service_falls_due() -> None:
    """10 cycles a day, 200 now, due at 300: about ten days from now."""
    history = tuple((NOW - timedelta(days=20 - day), 10.0 * day) for day in range(21))
    due = service_due_at(history, 300, NOW)
    assert due is not None
    assert NOW + timedelta(days=8) < due < NOW + timedelta(days=12)


def test_a_reset_counter_starts_the_count_again() -> None:
    """A descale resets the counter to 0: the service is due a full interval after it."""
    before = tuple((NOW - timedelta(days=40 - day), 10.0 * day) for day in range(25))
    after = tuple((NOW - timedelta(days=15 - day), 10.0 * day) for day in range(16))
    due = service_due_at(before + after, 300, NOW)
    assert due is not None
    assert NOW + timedelta(days=13) < due < NOW + timedelta(days=17)


def test_too_little_history_predicts_nothing() -> None:
    """Two readings are no rate."""
    assert service_due_at(((NOW - timedelta(days=1), 5.0), (NOW, 15.0)), 300, NOW) is None
