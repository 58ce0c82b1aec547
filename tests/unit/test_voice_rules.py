"""Pure rules behind the voice skill: product matching, rate estimates, consent, speech."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.domain.errors import InvalidRequest
from orders.queries.quotes import Quote, QuoteLine, expected_arrival
from orders.queries.search import ProductChoice, match_products, spoken
from orders.queries.supplies import estimate_rate
from orders.services.confirmation import voice_idempotency_key
from orders.services.consent import consent_needed
from orders.store.model import Shopper
from voice_skill import speech

PODS = ProductChoice("PODS", "Coffee pods (50)", 1599, "EUR", ("coffee pods", "pods"))
BEANS = ProductChoice("BEANS", "Coffee beans 1 kg", 2199, "EUR", ("beans",))
AA = ProductChoice("AA", "AA batteries (8)", 899, "EUR", ("double a batteries", "batteries"))
AAA = ProductChoice("AAA", "AAA batteries (8)", 999, "EUR", ("triple a batteries", "batteries"))
CATALOG = [PODS, BEANS, AA]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "sku"),
    [
        ("pods", "PODS"),
        ("Coffee Pods", "PODS"),
        ("cofee pods", "PODS"),
        ("coffee pod", "PODS"),
        ("double a", "AA"),
        ("the beans", "BEANS"),
    ],
)
def test_names_aliases_and_near_misses_find_one_product(query: str, sku: str) -> None:
    """Exact aliases and small mishearings find the product."""
    match = match_products(CATALOG, query)
    assert match.status == "found"
    assert match.product.sku == sku


def test_a_word_two_products_share_is_ambiguous() -> None:
    """ "coffee" is as close to pods as to beans: ask which."""
    match = match_products(CATALOG, "coffee")
    assert match.status == "ambiguous"
    assert {c.sku for c in match.choices} == {"PODS", "BEANS"}


def test_an_alias_two_products_share_is_ambiguous() -> None:
    """Two products both called "batteries" are not guessed between."""
    match = match_products([AA, AAA], "batteries")
    assert match.status == "ambiguous"
    assert [c.sku for c in match.choices] == ["AA", "AAA"]


@pytest.mark.parametrize("query", ["dog food", "tea", "", "   "])
def test_words_far_from_every_product_find_nothing(query: str) -> None:
    """Unrelated or empty words are unknown, never the closest product."""
    assert match_products(CATALOG, query).status == "unknown"


def test_entity_resolution_ids_win_over_the_words_heard() -> None:
    """A single SKU from Alexa's resolution is the product; several are a question."""
    assert match_products(CATALOG, "zzz", sku_hints=["BEANS"]).product.sku == "BEANS"
    assert match_products(CATALOG, "zzz", sku_hints=["PODS", "BEANS"]).status == "ambiguous"


def test_resolution_ids_of_products_not_in_the_store_are_ignored() -> None:
    """An id from a stale model falls back to the words."""
    match = match_products(CATALOG, "pods", sku_hints=["GONE"])
    assert match.product.sku == "PODS"


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("Coffee pods (50)", "coffee pods"),
        ("Laundry detergent 2 l", "laundry detergent"),
        ("Coffee beans 1.5 kg", "coffee beans"),
        ("(50)", "(50)"),
    ],
)
def test_spoken_names_drop_pack_counts_and_sizes(name: str, said: str) -> None:
    """Names are read without "(50)" or "2 l", but never read as nothing."""
    assert spoken(name) == said


def _days(*points: tuple[float, float]) -> list[tuple[datetime, float]]:
    return [(T0 + timedelta(days=day), value) for day, value in points]


def test_rate_is_units_used_per_day() -> None:
    """12 → 6 over three days is 2 a day."""
    assert estimate_rate(_days((0, 12), (1, 10), (3, 6)), 50) == pytest.approx(2.0)


def test_rate_starts_again_after_a_refill() -> None:
    """Usage before a refill does not count."""
    readings = _days((0, 40), (2, 10), (3, 50), (4, 40), (5, 30))
    assert estimate_rate(readings, 50) == pytest.approx(10.0)


def test_a_small_rise_is_noise_not_a_refill() -> None:
    """A rise under 5% of capacity keeps the history."""
    readings = _days((0, 40), (1, 31), (2, 32), (4, 20))
    assert estimate_rate(readings, 100) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "readings",
    [
        _days((0, 10)),
        _days((0, 10), (0.1, 9)),
        _days((0, 10), (1, 10)),
        _days((0, 10), (1, 40)),
    ],
    ids=["one-reading", "too-short", "flat", "refill-last"],
)
def test_no_rate_without_enough_falling_history(readings: list[tuple[datetime, float]]) -> None:
    """One reading, six hours or less, no fall, or just refilled: no estimate."""
    assert estimate_rate(readings, 50) is None


def _shopper(**fields: object) -> Shopper:
    values: dict[str, object] = {
        "voice_pin_hash": None,
        "voice_pin_threshold_minor": None,
        "voice_locked_until": None,
    }
    values.update(fields)
    return Shopper(name="Ada", **values)


@pytest.mark.parametrize(
    ("fields", "total", "needed"),
    [
        ({}, 10_000, "none"),
        ({"voice_pin_hash": "h"}, 1, "pin"),
        ({"voice_pin_threshold_minor": 1000}, 1000, "none"),
        ({"voice_pin_threshold_minor": 1000}, 1001, "pin_not_set"),
        ({"voice_pin_hash": "h", "voice_pin_threshold_minor": 1000}, 5, "pin"),
        ({"voice_pin_hash": "h", "voice_locked_until": T0 + timedelta(minutes=1)}, 5, "locked"),
        ({"voice_pin_hash": "h", "voice_locked_until": T0}, 5, "pin"),
    ],
)
def test_consent_needed_for_a_voice_purchase(
    fields: dict[str, object], total: int, needed: str
) -> None:
    """A PIN when set or over the threshold; none while locked; the lock ends on time."""
    assert consent_needed(_shopper(**fields), total, T0) == needed


@pytest.mark.parametrize("dialog", ["", "x" * 65, "a\nb", "été"])
def test_dialog_ids_that_cannot_be_keys_are_refused(dialog: str) -> None:
    """The idempotency key is built only from a sane dialog id."""
    with pytest.raises(InvalidRequest):
        voice_idempotency_key(1, dialog)


def test_the_key_names_the_shopper_so_dialog_ids_never_collide_across_shoppers() -> None:
    """Two shoppers with the same dialog id get different keys."""
    assert voice_idempotency_key(1, "abc") != voice_idempotency_key(2, "abc")


def test_arrival_is_the_order_day_plus_the_lead_time() -> None:
    """Two days' lead time from Nov 1 is Nov 3."""
    assert expected_arrival(T0, 2) == date(2026, 11, 3)


@pytest.mark.parametrize(
    ("minor", "currency", "said"),
    [(1599, "EUR", "15.99 euros"), (100, "EUR", "1 euro"), (200, "USD", "2 dollars"),
     (5, "GBP", "0.05 pounds"), (150, "CHF", "1.50 CHF")],
)  # fmt: skip
def test_money_is_said_in_words(minor: int, currency: str, said: str) -> None:
    """Amounts are read in the currency's words."""
    assert speech.money(minor, currency) == said


def test_ssml_characters_are_escaped() -> None:
    """&, < and > become entities."""
    assert speech.x("Salt & <b>Pepper</b>") == "Salt &amp; &lt;b&gt;Pepper&lt;/b&gt;"


@given(name=st.text(min_size=1, max_size=40), store=st.text(min_size=1, max_size=40))
def test_a_read_back_is_well_formed_ssml_whatever_the_names(name: str, store: str) -> None:
    """Any product or store name still gives SSML Alexa can parse."""
    quote = Quote(
        store_id=1,
        store_name=store,
        lines=(QuoteLine("SKU", name, 2, 100),),
        delivery_minor=0,
        total_minor=200,
        currency="EUR",
        arrives_on=date(2026, 11, 26),
        consent="none",
    )
    text = speech.readback(quote)
    # XML 1.0 forbids most control characters outright; Alexa could not speak them either.
    if all(ch.isprintable() or ch in "\t\n\r " for ch in name + store):
        ET.fromstring(f"<speak>{text}</speak>")
    assert "<" not in text and ">" not in text
