"""/link for a multi-slot device: a rule per slot on the one confirmation page."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from auth.clients import create_device_model_client
from orders.domain.maintenance import ConditionSpec
from orders.services.catalog import add_product
from orders.store.db import Database
from orders.store.model import DeviceLink, DeviceLinkSlot, Store
from tests.auth_fixtures import build_oauth_world, login_as
from tests.device_link_helpers import approve, forget_polls, poll, start
from tests.factories import db_snapshot
from tests.slot_fixtures import INKS, PRINTER_SLOTS
from tests.web_helpers import csrf_token


def _printer_client(db: Database, store_id: int) -> str:
    with db.write() as session:
        store = session.get(Store, store_id)
        assert store is not None
        for ink in INKS:
            add_product(
                session, store, sku=f"INK-{ink.upper()}", name=f"{ink} ink", price_minor=2000
            )
        add_product(session, store, sku="HEAD", name="Print head", price_minor=5000)
    conditions = [ConditionSpec("head_worn", "flag", "Replace the print head.", sku="HEAD")]
    _model, client_id = create_device_model_client(
        db, store_id, name="Printer", kind="appliance", slots=PRINTER_SLOTS, conditions=conditions
    )
    return client_id


def _rules(db: Database) -> dict[str, tuple[str, float | None, int]]:
    with db.read() as session:
        rows = session.scalars(select(DeviceLinkSlot).order_by(DeviceLinkSlot.slot))
        return {row.slot: (row.policy, row.reorder_point, row.quantity) for row in rows}


def test_the_confirmation_page_sets_a_rule_for_each_ink(app: Flask, db: Database) -> None:
    """Four fieldsets, each with the model's default; the shopper's choices are stored."""
    o = build_oauth_world(db)
    client_id = _printer_client(db, o.world.store_id)
    device = app.test_client()
    started = start(device, client_id, "PR-9")
    browser = app.test_client()
    login_as(browser, o.shopper_account_id)
    page = browser.post("/link", data={
        "user_code": started["user_code"], "csrf_token": csrf_token(browser.get("/link").text),
    })  # fmt: skip
    assert page.status_code == 200
    for ink in INKS:
        assert f'value="{ink}_ink"' in page.text
    assert page.text.count("<fieldset>") == 4 and 'name="product"' not in page.text
    assert 'name="maintenance_orders"' in page.text
    done = browser.post("/link", data={
        "user_code": started["user_code"], "decision": "approve",
        "csrf_token": csrf_token(page.text),
        "slots-0-slot": "cyan_ink", "slots-0-policy": "off", "slots-0-quantity": "1",
        "slots-1-slot": "magenta_ink", "slots-1-policy": "threshold",
        "slots-1-reorder_point": "25", "slots-1-quantity": "2",
        "slots-2-slot": "yellow_ink", "slots-2-policy": "predictive", "slots-2-quantity": "1",
        "slots-3-slot": "black_ink", "slots-3-policy": "threshold", "slots-3-quantity": "1",
        "maintenance_orders": "y",
    })  # fmt: skip
    assert done.status_code == 200, done.text
    assert _rules(db) == {
        "black_ink": ("threshold", None, 1),
        "cyan_ink": ("off", None, 1),
        "magenta_ink": ("threshold", 25.0, 2),
        "yellow_ink": ("predictive", None, 1),
    }
    with db.read() as session:
        link = session.scalars(select(DeviceLink).where(DeviceLink.status == "active")
                               .order_by(DeviceLink.id.desc())).first()  # fmt: skip
        assert link is not None and link.maintenance_orders
    forget_polls(db)
    assert poll(device, client_id, started["device_code"]).status_code == 200


def test_a_client_that_sends_no_slot_rules_gets_the_model_defaults(
    app: Flask, db: Database
) -> None:
    """Only `decision=approve` (CONTRACT's fields): every slot at the model's default policy."""
    o = build_oauth_world(db)
    client_id = _printer_client(db, o.world.store_id)
    started = start(app.test_client(), client_id, "PR-10")
    browser = app.test_client()
    login_as(browser, o.shopper_account_id)
    assert approve(browser, started["user_code"]).status_code == 200
    assert set(_rules(db).values()) == {("threshold", None, 1)} and len(_rules(db)) == 4


def test_a_bad_slot_rule_is_shown_on_its_field_and_links_nothing(app: Flask, db: Database) -> None:
    """A policy that isn't offered and a reorder point beyond capacity: 400, nothing linked."""
    o = build_oauth_world(db)
    client_id = _printer_client(db, o.world.store_id)
    started = start(app.test_client(), client_id, "PR-11")
    browser = app.test_client()
    login_as(browser, o.shopper_account_id)
    before = db_snapshot(db)
    bad_policy = approve(browser, started["user_code"], **{
        "slots-0-slot": "cyan_ink", "slots-0-policy": "always",
    })  # fmt: skip
    assert bad_policy.status_code == 400 and "Not a valid choice" in bad_policy.text
    too_high = approve(browser, started["user_code"], **{
        "slots-0-slot": "cyan_ink", "slots-0-policy": "threshold", "slots-0-reorder_point": "150",
    })  # fmt: skip
    assert too_high.status_code == 400 and "reorder point must be 0 to 100" in too_high.text
    assert db_snapshot(db) == before
