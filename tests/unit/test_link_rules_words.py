"""Link rules in words, their checks and their differences (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.errors import InvalidRequest
from orders.domain.link_rules import RISK_WORDS, Rules, changes, check_rules, describe, risk_word
from orders.domain.notices import NOTICE_TEXT, email_kinds, retry_after, text_of

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
BASE = Rules(
    name=None, product_sku="PODS", quantity=1, approval_required=False, per_order_cap_minor=None,
    monthly_cap_minor=None, policy="threshold", reorder_point=10.0, order_up_to=None, risk=0.003,
    paused=False, paused_until=None,
)  # fmt: skip
MONEY = {"per_order": "EUR 12.50", "monthly": "EUR 40.00"}


def _words(rules: Rules, **kw: object) -> list[str]:
    args: dict[str, object] = dict(
        product_name="Coffee pods", price="EUR 5.00", money=MONEY, unit="count", slot="pods",
        now=NOW,
    )  # fmt: skip
    args.update(kw)
    return describe(rules, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes_", "sentence"),
    [
        ({}, "Orders when pods falls to 10 count."),
        ({"reorder_point": None}, "Orders when pods falls to its automatic level."),
        ({"policy": "alert"}, "Never orders by itself: tells you when pods runs low."),
        ({"policy": "predictive", "risk": 0.15},
         "Orders before pods is predicted to run out, aiming for: fewest orders."),
        ({"policy": "up_to", "order_up_to": 45.0},
         "When pods falls to 10 count, orders enough to fill it up to 45 count."),
        ({"approval_required": True}, "Asks you to approve every order before the store ships it."),
        ({"per_order_cap_minor": 1250}, "Never more than EUR 12.50 per order."),
        ({"monthly_cap_minor": 4000}, "At most EUR 40.00 a month from this device."),
        ({"paused": True}, "Paused: orders nothing until you resume it."),
        ({"paused_until": NOW + timedelta(days=2)},
         "On vacation until 2026-12-08 12:00 UTC: orders nothing before then."),
    ],
)  # fmt: skip
def test_each_rule_has_its_sentence(changes_: dict[str, object], sentence: str) -> None:
    """Every rule value reads as one plain sentence."""
    assert sentence in _words(replace(BASE, **changes_))  # type: ignore[arg-type]


def test_a_button_has_no_policy_sentence_and_an_ended_vacation_none() -> None:
    """Without a slot nothing is said about levels; a past vacation is not mentioned."""
    words = _words(replace(BASE, paused_until=NOW - timedelta(days=1)), slot=None, unit=None)
    assert not any("falls to" in w or "vacation" in w for w in words) and len(words) == 4


def test_risk_words_round_trip() -> None:
    """Each word's risk reads back as the same word."""
    assert {risk_word(risk) for risk in RISK_WORDS.values()} == set(RISK_WORDS)


def test_changes_name_each_field_with_text_before_and_after() -> None:
    """Booleans as yes/no, numbers as written, None as None."""
    new = replace(BASE, approval_required=True, reorder_point=12.5, per_order_cap_minor=900)
    found = [(c.field, c.old, c.new) for c in changes(BASE, new)]
    assert found == [
        ("approval_required", "no", "yes"),
        ("per_order_cap_minor", None, "900"),
        ("reorder_point", "10", "12.5"),
    ]


def test_a_name_is_trimmed_and_an_empty_one_is_none() -> None:
    """Spaces around a name go; a blank name means no name."""
    checked = check_rules(replace(BASE, name="  Hall  "), skus=("PODS",), has_slots=True, now=NOW)
    assert checked.name == "Hall"
    blank = check_rules(replace(BASE, name="  "), skus=("PODS",), has_slots=True, now=NOW)
    assert blank.name is None


def test_a_button_may_only_order_when_pressed() -> None:
    """Policies other than the plain one need a supply level to act on."""
    with pytest.raises(InvalidRequest) as refused:
        check_rules(replace(BASE, policy="alert"), skus=("PODS",), has_slots=False, now=NOW)
    assert refused.value.reason == "bad_policy"


def test_every_notice_kind_has_words_and_a_default_by_e_mail() -> None:
    """Each kind reads as a title and body; never chosen means every kind by e-mail."""
    for kind in NOTICE_TEXT:
        text = text_of(kind, {"summary": "1 × Coffee pods", "total": "EUR 5.00"})
        assert text.title and text.body
    assert email_kinds(None) == frozenset(NOTICE_TEXT)
    assert email_kinds(["order_shipped", "nonsense"]) == {"order_shipped"}


def test_sending_is_retried_four_times_then_given_up() -> None:
    """1, 5, 30 and 120 minutes; after the fifth failure, none."""
    assert [retry_after(n) for n in range(1, 6)] == [1, 5, 30, 120, None]
