"""Rules after linking: the shopper's device page shows every rule in words, changes are
recorded with who and when, and the next press or report is decided under them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from orders.domain.errors import InvalidRequest, OrderRefused
from orders.domain.link_rules import Rules
from orders.services.link_rules import change_rules, my_device_rules
from orders.services.ordering import press
from orders.services.telemetry import record_telemetry
from orders.store.db import Database, utcnow
from orders.store.model import DeviceLink, LinkRuleChange, Order
from tests.dash_helpers import Tenants, build_tenants, form_post, signed_in
from tests.e2e.hub_fixtures import build_devices
from tests.factories import count, db_snapshot

RULES_FORM = {
    "name": "",
    "product": "PODS",
    "quantity": "1",
    "per_order_cap": "",
    "monthly_cap": "",
    "policy": "threshold",
    "reorder_point": "",
    "order_up_to": "",
    "risk": "rarely_run_out",
    "paused_until": "",
}


def _save(app: Flask, t: Tenants, **changes: Any) -> Any:
    client = signed_in(app, t.shopper_email)
    return form_post(client, f"/my/devices/{t.ours.device_id}", {**RULES_FORM, **changes})


def _rules(**changes: Any) -> Rules:
    base = Rules(
        name=None, product_sku="PODS", quantity=1, approval_required=False,
        per_order_cap_minor=None, monthly_cap_minor=None, policy="threshold",
        reorder_point=10.0, order_up_to=None, risk=0.003, paused=False, paused_until=None,
    )  # fmt: skip
    return Rules(**{**base.__dict__, **changes})


def test_the_device_page_says_every_rule_in_plain_words(app: Flask, db: Database) -> None:
    """Product with its price, approval, both caps in the store's currency, no pause."""
    t = build_tenants(db)
    page = signed_in(app, t.shopper_email).get(f"/my/devices/{t.ours.device_id}").text
    assert "Orders 1 × Coffee pods (EUR 5.00 each) at a time." in page
    assert "Orders without asking you first" in page
    assert "No limit per order." in page
    assert "Amounts are in EUR." in page
    assert "No changes since you linked it." in page


def test_a_changed_rule_is_recorded_and_the_next_press_obeys_it(app: Flask, db: Database) -> None:
    """Approval switched on from the page: the history says who, what and before/after, and
    the very next press waits for approval instead of ordering."""
    t = build_tenants(db)
    with db.write() as session:  # the factory's first order is still open: close it
        order = session.get(Order, t.order_id)
        assert order is not None
        order.status = "delivered"
    response = _save(app, t, approval_required="y", per_order_cap="12.50")
    assert response.status_code == 302
    assert press(db, t.ours.device_id, 2).outcome == "needs_approval"
    with db.read() as session:
        changes = {
            row.field: (row.old_value, row.new_value, row.actor)
            for row in session.scalars(select(LinkRuleChange))
        }
    assert changes == {
        "approval_required": ("no", "yes", "shopper"),
        "per_order_cap_minor": (None, "1250", "shopper"),
    }
    page = signed_in(app, t.shopper_email).get(f"/my/devices/{t.ours.device_id}").text
    assert "Asks you to approve every order" in page
    assert "Never more than EUR 12.50 per order." in page
    assert "approval required" in page


def test_a_vacation_refuses_presses_until_its_day(app: Flask, db: Database) -> None:
    """Paused until a date: presses are refused `paused`; the page says until when."""
    t = build_tenants(db)
    day = (utcnow() + timedelta(days=3)).date()
    assert _save(app, t, paused_until=day.isoformat()).status_code == 302
    with pytest.raises(OrderRefused) as refused:
        press(db, t.ours.device_id, 2)
    assert refused.value.reason == "paused"
    page = signed_in(app, t.shopper_email).get(f"/my/devices/{t.ours.device_id}").text
    assert f"On vacation until {day.isoformat()} 00:00 UTC" in page


def test_a_named_device_shows_its_name_instead_of_the_serial(app: Flask, db: Database) -> None:
    """The name lives on the link: the shopper's list shows it."""
    t = build_tenants(db)
    assert _save(app, t, name="Kitchen button").status_code == 302
    listing = signed_in(app, t.shopper_email).get("/my/devices").text
    assert "Kitchen button" in listing and "Button SN-1" not in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": "0"}, "Number must be between 1 and 99."),
        ({"product": "AA"}, "Not a valid choice."),
        ({"paused_until": "2001-01-01"}, "a vacation ends in the future"),
        ({"name": "x" * 101}, "Field cannot be longer than 100 characters."),
    ],
)
def test_a_bad_rule_is_refused_on_its_field_and_changes_nothing(
    app: Flask, db: Database, fields: dict[str, str], message: str
) -> None:
    """400 with the error beside the field; no rule and no history row changed."""
    t = build_tenants(db)
    before = db_snapshot(db)
    response = _save(app, t, **fields)
    assert response.status_code == 400
    assert message in response.text and 'aria-invalid="true"' in response.text
    assert db_snapshot(db) == before


def test_another_shoppers_device_page_is_not_found(app: Flask, db: Database) -> None:
    """Reading or posting rules for a device linked to someone else: 404, nothing changed."""
    t = build_tenants(db)
    client = signed_in(app, t.shopper_email)
    assert client.get(f"/my/devices/{t.theirs.device_id}").status_code == 404
    before = db_snapshot(db)
    posted = form_post(client, f"/my/devices/{t.theirs.device_id}", {**RULES_FORM, "quantity": "3"})
    assert posted.status_code == 404
    assert db_snapshot(db) == before


def test_a_new_reorder_level_decides_the_next_report(db: Database) -> None:
    """At 25 pods nothing is ordered under a level of 10; raised to 30, the next report
    at 25 orders."""
    devices = build_devices(db)
    shopper, appliance = devices.world.shopper_id, devices.appliance_id
    assert record_telemetry(db, appliance, [{"n": "pods", "u": "count", "v": 25}]).action == "none"
    change_rules(db, shopper, appliance, _rules(reorder_point=30.0))
    result = record_telemetry(db, appliance, [{"n": "pods", "u": "count", "v": 25}])
    assert result.action == "ordered"


def test_alert_only_never_orders(db: Database) -> None:
    """An alert-only link reports a low level without ordering."""
    devices = build_devices(db)
    shopper, appliance = devices.world.shopper_id, devices.appliance_id
    change_rules(db, shopper, appliance, _rules(policy="alert"))
    result = record_telemetry(db, appliance, [{"n": "pods", "u": "count", "v": 1}])
    assert result.action == "none" and count(db, Order) == 0


def test_order_up_to_fills_to_its_level_in_whole_packs(db: Database) -> None:
    """From 5 up to 45 pods, where one pack refills 50: one whole pack is ordered."""
    devices = build_devices(db)
    shopper, appliance = devices.world.shopper_id, devices.appliance_id
    change_rules(db, shopper, appliance, _rules(policy="up_to", order_up_to=45.0))
    result = record_telemetry(db, appliance, [{"n": "pods", "u": "count", "v": 5}])
    assert result.action == "ordered" and result.order is not None
    assert result.order.lines[0].quantity == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"policy": "up_to", "order_up_to": None}, "bad_order_up_to"),
        ({"policy": "up_to", "order_up_to": 5.0}, "bad_order_up_to"),
        ({"risk": 0.3}, "bad_risk"),
        ({"policy": "sometimes"}, "bad_policy"),
        ({"product_sku": "AA"}, "product_not_allowed"),
    ],
)
def test_the_service_refuses_rules_that_cannot_hold(
    db: Database, changes: dict[str, Any], reason: str
) -> None:
    """Each refusal names its field's reason and leaves the database as it was."""
    devices = build_devices(db)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest) as refused:
        change_rules(db, devices.world.shopper_id, devices.appliance_id, _rules(**changes))
    assert refused.value.reason == reason
    assert db_snapshot(db) == before


def test_predictive_risk_reads_in_words(db: Database) -> None:
    """The page's sentence names the risk as words, not a probability."""
    devices = build_devices(db)
    shopper, appliance = devices.world.shopper_id, devices.appliance_id
    change_rules(db, shopper, appliance, _rules(policy="predictive", risk=0.05))
    words = my_device_rules(db, shopper, appliance).words
    assert "Orders before pods is predicted to run out, aiming for: balanced." in words


def test_the_account_limit_counts_every_channel(app: Flask, db: Database) -> None:
    """Set on the settings page, the limit refuses the next press over it."""
    t = build_tenants(db)
    with db.write() as session:  # the factory's first order (EUR 5.00) counts this month
        link = session.scalar(select(DeviceLink).where(DeviceLink.id == t.ours.link_id))
        assert link is not None
        order = session.get(Order, t.order_id)
        assert order is not None
        order.status = "delivered"
    client = signed_in(app, t.shopper_email)
    response = form_post(client, "/my/limit", {"monthly_cap": "9.00"})
    assert response.status_code == 302
    assert "At most 9.00 a month" in client.get("/my/notifications/settings").text
    with pytest.raises(OrderRefused) as refused:
        press(db, t.ours.device_id, 2)
    assert refused.value.reason == "spending_cap"
