"""Delivery addresses on their own: the entry rules (ISO 3166-1 countries) and the
placement decision's needs_address step. No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orders.domain.addresses import COUNTRIES, ERASED, ShipTo, address_problems, check_address
from orders.domain.decision import (
    Ask,
    Facts,
    InProgress,
    LinkFacts,
    NeedsConsent,
    Place,
    Refusal,
    ShopperFacts,
    StockedLine,
    StoreFacts,
    decide,
)
from orders.domain.errors import InvalidRequest, OrderRefused
from orders.domain.rules import PricedLine

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
HOME = ShipTo("Ada Lovelace", "12 St James's Square", "London", "GB", postcode="SW1Y 4JH")
FACTS = Facts(
    ShopperFacts(7, None, None, None, None),
    StoreFacts(3, "Shop", "EUR", 30, 2.0),
    (StockedLine(PricedLine(21, "PODS", "Coffee pods", 2, 450), stock=10),),
    LinkFacts(11, 7, 3, False, False, None, None, 5),
    ship_to=HOME,
)
BUTTON = Ask("button", "press:11::1", device_id=5)
ENTERED = {"name": " Ada ", "line1": "1 Main St", "city": "Berlin", "country": "de"}


def test_every_officially_assigned_iso_3166_alpha_2_code_is_a_country() -> None:
    """249 codes, each two capital letters; reserved ones such as UK and EU are not."""
    assert len(COUNTRIES) == 249
    assert all(len(c) == 2 and c.isalpha() and c.isupper() for c in COUNTRIES)
    assert {"DE", "GB", "US", "JP", "SS", "XK"} & COUNTRIES == {"DE", "GB", "US", "JP", "SS"}
    assert not {"UK", "EU", "ZZ"} & COUNTRIES


def test_an_address_is_kept_trimmed_with_an_upper_case_country() -> None:
    """Whitespace goes, `de` is DE, empty optional fields are None."""
    kept = check_address({**ENTERED, "line2": "  ", "phone": ""})
    assert kept == ShipTo("Ada", "1 Main St", "Berlin", "DE")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XK"}, "country"),
        ({"country": "D"}, "country"),
        ({"country": "DEU"}, "country"),
        ({"country": ""}, "country"),
        ({"name": ""}, "name"),
        ({"city": "\x00"}, "city"),
        ({"line1": "x" * 201}, "line1"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+49 30 <script>"}, "phone"),
    ],
)
def test_a_bad_field_is_named_and_refused(change: dict[str, str], field: str) -> None:
    """address_problems names the field; check_address refuses with bad_address."""
    assert field in address_problems({**ENTERED, **change})
    with pytest.raises(InvalidRequest) as refused:
        check_address({**ENTERED, **change})
    assert refused.value.reason == "bad_address"


def test_a_press_without_an_address_is_refused_needs_address() -> None:
    """No ship_to: the contract word needs_address, as an OrderRefused."""
    decision = decide(BUTTON, replace(FACTS, ship_to=None), NOW)
    assert decision == Refusal("needs_address")
    assert isinstance(decision.error(), OrderRefused)


def test_an_open_order_still_answers_in_progress_without_an_address() -> None:
    """The open order already ships somewhere: the press answers with it."""
    assert decide(BUTTON, replace(FACTS, ship_to=None, open_order="o1"), NOW) == InProgress("o1")


def test_a_voice_yes_without_an_address_is_refused_before_the_pin_is_asked() -> None:
    """Asking for a PIN for an order that cannot ship helps nobody."""
    shopper = replace(FACTS.shopper, voice_pin_hash="h")
    facts = replace(FACTS, shopper=shopper, link=None, ship_to=None)
    ask = Ask("voice", "voice:7:d", pin_verified=False)
    assert decide(ask, facts, NOW) == Refusal("needs_address")
    assert decide(ask, replace(facts, ship_to=HOME), NOW) == NeedsConsent("needs_pin")


def test_the_decided_order_copies_the_address_into_its_row() -> None:
    """The row carries every ship_* column, so the order never points at a changeable row."""
    decision = decide(BUTTON, FACTS, NOW)
    assert isinstance(decision, Place) and decision.order.ship_to == HOME
    row = decision.order.order_row()
    assert {k: v for k, v in row.items() if k.startswith("ship_")} == {
        "ship_name": "Ada Lovelace", "ship_line1": "12 St James's Square", "ship_city": "London",
        "ship_country": "GB", "ship_line2": None, "ship_postcode": "SW1Y 4JH",
        "ship_region": None, "ship_phone": None,
    }  # fmt: skip


def test_an_erased_address_keeps_no_line_postcode_country_or_phone() -> None:
    """What erasure leaves on a past order says only that it was erased."""
    columns = ERASED.order_columns()
    assert columns["ship_name"] == "erased"
    assert not any(value for key, value in columns.items() if key != "ship_name")
