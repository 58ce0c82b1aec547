"""The one placement decision, on facts alone: no database, no channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from orders.domain.addresses import ShipTo
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
from orders.domain.errors import InvalidRequest, NotFound, OrderRefused
from orders.domain.rules import PricedLine

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
SHOPPER = ShopperFacts(7, None, None, None, None)
STORE = StoreFacts(3, "Shop", "EUR", 30, 2.0)
LINK = LinkFacts(11, 7, 3, False, False, None, None, 5)
PODS = StockedLine(PricedLine(21, "PODS", "Coffee pods", 2, 450), stock=10)
BUTTON = Ask("button", "press:11::1", device_id=5)
WEB = Ask("web", "k1")
HOME = ShipTo("Ada Lovelace", "12 St James's Square", "London", "GB", postcode="SW1Y 4JH")


def _facts(**changes: object) -> Facts:
    return replace(Facts(SHOPPER, STORE, (PODS,), LINK, ship_to=HOME), **changes)  # type: ignore[arg-type]


def _link(**changes: object) -> LinkFacts:
    return replace(LINK, **changes)  # type: ignore[arg-type]


def test_a_linked_device_places_an_order_with_every_row_decided() -> None:
    """Price captured, total, cancel window, key, device, link and product on the rows."""
    decision = decide(BUTTON, _facts(), NOW)
    assert isinstance(decision, Place) and decision.outcome == "placed"
    order = decision.order
    assert order.order_row() == {
        "id": order.id, "store_id": 3, "shopper_id": 7, "device_id": 5, "link_id": 11,
        "device_product_id": 21, "held_product_id": 21, "channel": "button", "status": "placed",
        "idempotency_key": "press:11::1", "total_minor": 900, "currency": "EUR",
        "created_at": NOW, "updated_at": NOW, "cancel_until": NOW + timedelta(minutes=30),
        "approval_by": None, "ship_name": "Ada Lovelace", "ship_line1": "12 St James's Square",
        "ship_line2": None,
        "ship_postcode": "SW1Y 4JH", "ship_city": "London", "ship_region": None,
        "ship_country": "GB", "ship_phone": None, "test": False, "hold_reason": None,
        "consented_sku": None, "consented_price_minor": None,
    }  # fmt: skip
    assert order.line_rows() == [
        {"order_id": order.id, "product_id": 21, "sku": "PODS", "name": "Coffee pods",
         "quantity": 2, "unit_price_minor": 450, "line_total_minor": 900}
    ]  # fmt: skip
    assert order.event_row()["type"] == "order.created"
    assert order.event_row()["data"] == {"device_id": 5, "shopper_id": 7}


def test_a_web_order_names_no_device_link_or_device_product() -> None:
    """Without a device, the order belongs to the shopper alone."""
    decision = decide(WEB, _facts(link=None), NOW)
    assert isinstance(decision, Place)
    assert (decision.order.device_id, decision.order.link_id) == (None, None)
    assert decision.order.device_product_id is None


def test_approval_mode_decides_a_pending_approval_order() -> None:
    """A link in approval mode: needs_approval, status pending_approval."""
    decision = decide(BUTTON, _facts(link=_link(approval_required=True)), NOW)
    assert isinstance(decision, Place) and decision.outcome == "needs_approval"
    assert decision.order.status == "pending_approval"
    assert decision.order.approval_by == "shopper"


@pytest.mark.parametrize(
    ("review_over", "shopper_first", "approval_by"),
    [
        (None, False, None),  # no review: placed
        (901, False, None),  # under the threshold: placed
        (900, False, "merchant"),  # at the threshold: the store reviews it
        (900, True, "shopper"),  # the shopper consents first; the store reviews after
    ],
)
def test_a_store_reviews_orders_at_or_over_its_threshold(
    review_over: int | None, shopper_first: bool, approval_by: str | None
) -> None:
    """`review_orders_over_minor`: an order of at least that total waits for the merchant."""
    store = replace(STORE, review_orders_over_minor=review_over)
    link = _link(approval_required=shopper_first)
    decision = decide(BUTTON, _facts(store=store, link=link), NOW)
    assert isinstance(decision, Place)
    assert decision.order.approval_by == approval_by
    assert decision.outcome == ("needs_approval" if approval_by else "placed")
    assert decision.order.status == ("pending_approval" if approval_by else "placed")
    assert decision.order.order_row()["approval_by"] == approval_by


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (None, "unlinked"),
        (_facts(link=None), "unlinked"),
        (_facts(shopper=replace(SHOPPER, deleted=True)), "unlinked"),
        (_facts(link=_link(shopper_id=8)), "unlinked"),
        (_facts(link=_link(store_id=4)), "unlinked"),
        (_facts(link=_link(paused=True)), "paused"),
        (_facts(lines=()), "no_product"),
        (_facts(lines=(replace(PODS, active=False),)), "unknown_sku"),
        (_facts(link=_link(per_order_cap_minor=899)), "spending_cap"),
        (_facts(link=_link(monthly_cap_minor=1000), spent_link=101), "spending_cap"),
        (_facts(shopper=replace(SHOPPER, monthly_cap_minor=1000), spent_shopper=101),
         "spending_cap"),
        (_facts(lines=(replace(PODS, stock=1),)), "out_of_stock"),
    ],
)  # fmt: skip
def test_a_device_press_is_refused_with_the_contracts_word(
    facts: Facts | None, reason: str
) -> None:
    """Each rule refuses with its own reason, and a refusal decides no rows."""
    decision = decide(BUTTON, facts, NOW)
    assert decision == Refusal(reason)


def test_caps_allow_spending_exactly_up_to_them() -> None:
    """A cap is the most a month may cost: reaching it exactly is allowed."""
    facts = _facts(
        link=_link(per_order_cap_minor=900, monthly_cap_minor=1000),
        spent_link=100,
        shopper=replace(SHOPPER, monthly_cap_minor=2000),
        spent_shopper=1100,
    )
    assert isinstance(decide(BUTTON, facts, NOW), Place)


def test_a_paused_device_is_refused_before_its_open_order_is_mentioned() -> None:
    """Pause comes first: a paused device never answers in_progress."""
    decision = decide(BUTTON, _facts(link=_link(paused=True), open_order="o1"), NOW)
    assert decision == Refusal("paused")


def test_an_open_order_of_the_link_answers_in_progress_before_caps_and_stock() -> None:
    """The link's open order is the answer even when a new order would be refused."""
    facts = _facts(open_order="o1", lines=(replace(PODS, stock=0),), spent_link=10**6)
    assert decide(BUTTON, facts, NOW) == InProgress("o1")


def test_a_web_order_ignores_the_in_progress_guard() -> None:
    """The guard is a device's: a shopper on the web may order again."""
    assert isinstance(decide(WEB, _facts(link=None, open_order="o1"), NOW), Place)


def test_a_departed_shopper_is_not_found_on_the_web() -> None:
    """A shopper who left has no orders placed for them by any channel."""
    decision = decide(WEB, _facts(link=None, shopper=replace(SHOPPER, deleted=True)), NOW)
    assert decision == Refusal("not_found")
    assert isinstance(decision.error(), NotFound)


def test_every_line_must_be_in_stock() -> None:
    """A multi-line order short on its second line is refused whole."""
    lines = (PODS, StockedLine(PricedLine(22, "AA", "AA batteries", 6, 300), stock=5))
    assert decide(WEB, _facts(link=None, lines=lines), NOW) == Refusal("out_of_stock")


def test_the_price_guard_refuses_a_total_other_than_the_one_read_back() -> None:
    """A voice yes for a price that has since changed reads the new price back."""
    ask = Ask("voice", "voice:7:d", quoted_total_minor=800, pin_verified=False)
    assert decide(ask, _facts(link=None), NOW) == NeedsConsent("price_changed")
    assert isinstance(decide(replace(ask, quoted_total_minor=900), _facts(link=None), NOW), Place)


@pytest.mark.parametrize(
    ("shopper", "verified", "expected"),
    [
        (replace(SHOPPER, voice_pin_hash="h"), False, NeedsConsent("needs_pin")),
        (replace(SHOPPER, voice_pin_hash="h"), True, None),
        (replace(SHOPPER, voice_locked_until=NOW + timedelta(minutes=5)), True,
         NeedsConsent("locked")),
        (replace(SHOPPER, voice_pin_threshold_minor=899), False, NeedsConsent("pin_not_set")),
        (replace(SHOPPER, voice_pin_threshold_minor=900), False, None),
    ],
)  # fmt: skip
def test_voice_consent_is_part_of_the_decision(
    shopper: ShopperFacts, verified: bool, expected: NeedsConsent | None
) -> None:
    """PIN, lock and threshold decide a voice yes; None here means it places."""
    ask = Ask("voice", "voice:7:d", quoted_total_minor=900, pin_verified=verified)
    decision = decide(ask, _facts(link=None, shopper=shopper), NOW)
    if expected is None:
        assert isinstance(decision, Place)
    else:
        assert decision == expected


def test_a_channel_without_voice_consent_never_asks_for_a_pin() -> None:
    """The web and devices place for a shopper who set a voice PIN."""
    facts = _facts(shopper=replace(SHOPPER, voice_pin_hash="h"))
    assert isinstance(decide(BUTTON, facts, NOW), Place)


def test_refusals_become_the_domain_errors_adapters_already_map() -> None:
    """CONTRACT refusal words are OrderRefused; request faults are InvalidRequest."""
    assert isinstance(Refusal("paused").error(), OrderRefused)
    assert isinstance(Refusal("no_product").error(), InvalidRequest)
    assert Refusal("out_of_stock", "not enough PODS").error().detail == "not enough PODS"


CONSENTED = _link(consented_product_id=21, consented_sku="PODS", consented_price_minor=450)


@pytest.mark.parametrize(
    ("link", "unit_price", "product_id", "expected"),
    [
        (CONSENTED, 450, 21, None),
        (CONSENTED, 451, 21, "price_changed"),
        (replace(CONSENTED, price_tolerance_minor=50), 500, 21, None),
        (replace(CONSENTED, price_tolerance_minor=50), 501, 21, "price_changed"),
        (CONSENTED, 400, 21, None),
        (CONSENTED, 450, 22, "product_changed"),
        (LINK, 999, 22, None),
    ],
    ids=["agreed", "dearer", "within tolerance", "beyond tolerance", "cheaper", "substituted",
         "nothing recorded"],
)  # fmt: skip
def test_a_device_order_dearer_or_substituted_waits_for_the_shopper(
    link: LinkFacts, unit_price: int, product_id: int, expected: str | None
) -> None:
    """Above the agreed unit price beyond the tolerance, or another product: pending
    approval, with the reason and what was agreed on the order's rows and event."""
    line = StockedLine(PricedLine(product_id, "PODS2", "Pods", 2, unit_price), stock=10)
    decision = decide(BUTTON, _facts(link=link, lines=(line,)), NOW)
    assert isinstance(decision, Place)
    row = decision.order.order_row()
    if expected is None:
        assert (decision.outcome, row["hold_reason"]) == ("placed", None)
        return
    assert (decision.outcome, row["status"]) == ("needs_approval", "pending_approval")
    assert (row["hold_reason"], row["consented_sku"], row["consented_price_minor"]) == (
        expected, "PODS", 450,
    )  # fmt: skip
    assert decision.order.event_row()["data"]["reason"] == expected


def test_a_test_device_places_a_test_order_past_caps_and_empty_stock() -> None:
    """A test order spends nothing and takes nothing: caps and stock do not stop it, and
    its rows and event say `test`."""
    capped = _link(test=True, per_order_cap_minor=1)
    empty = replace(PODS, stock=0)
    decision = decide(BUTTON, _facts(link=capped, lines=(empty,)), NOW)
    assert isinstance(decision, Place) and decision.outcome == "placed"
    assert decision.order.order_row()["test"] is True
    assert decision.order.event_row()["data"]["test"] is True


def test_a_paused_test_device_is_still_refused() -> None:
    """Test mode lifts only spending and stock: the shopper's pause still holds."""
    assert decide(BUTTON, _facts(link=_link(test=True, paused=True)), NOW) == Refusal("paused")


def test_a_suggested_order_waits_for_the_shopper_even_without_approval_mode() -> None:
    """A device's suggestion (a part for a fault) is pending approval; still held by an open one."""
    suggestion = Ask("appliance", device_id=5, suggested=True)
    decision = decide(suggestion, _facts(), NOW)
    assert isinstance(decision, Place) and decision.outcome == "needs_approval"
    assert decision.order.status == "pending_approval"
    assert decide(suggestion, _facts(open_order="o-1"), NOW) == InProgress("o-1")


@pytest.mark.parametrize("ask", [BUTTON, Ask("appliance", device_id=5), Ask("voice", "v:1")])
def test_an_open_household_order_of_the_product_answers_in_progress_on_held_channels(
    ask: Ask,
) -> None:
    """Another channel's open order of the same product holds a press, an appliance and a
    plain voice yes: in_progress with that order, nothing decided."""
    link = LINK if ask.device_id is not None else None
    decision = decide(ask, _facts(link=link, household_open="voice-order"), NOW)
    assert decision == InProgress("voice-order")


@pytest.mark.parametrize(
    "ask", [WEB, Ask("api", "k2"), Ask("voice", "v:2", on_purpose=True)], ids=str
)
def test_an_order_asked_for_on_purpose_passes_the_household_guard_and_holds_nothing(
    ask: Ask,
) -> None:
    """The web, the API and a voice yes to "one is on the way" order more, and the order
    they make holds no product (the partial unique index leaves it out)."""
    decision = decide(ask, _facts(link=None, household_open="earlier"), NOW)
    assert isinstance(decision, Place)
    assert decision.order.held_product_id is None


def test_a_link_answers_with_its_own_open_order_before_the_households() -> None:
    """Both open: the device's own order is the answer, as before the household guard."""
    decision = decide(BUTTON, _facts(open_order="own", household_open="other"), NOW)
    assert decision == InProgress("own")


def test_voice_approval_mode_makes_a_voice_order_wait_for_approval_and_only_a_voice_one() -> None:
    """The shopper's setting: a voice yes decides pending_approval; a web order is placed."""
    shopper = replace(SHOPPER, voice_approval=True)
    voice = decide(Ask("voice", "v:3", pin_verified=False), _facts(link=None, shopper=shopper), NOW)
    assert isinstance(voice, Place) and voice.outcome == "needs_approval"
    assert voice.order.status == "pending_approval"
    web = decide(WEB, _facts(link=None, shopper=shopper), NOW)
    assert isinstance(web, Place) and web.outcome == "placed"
