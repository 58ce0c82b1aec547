"""The price and product guard: a device order dearer than the shopper agreed to (beyond
their tolerance), or for another product, waits for their approval, on every device path."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select, update

from orders.domain.actions import Viewer
from orders.queries.history import open_orders
from orders.services import lifecycle
from orders.services.devices import LinkRules
from orders.services.notifications import my_notices
from orders.services.ordering import press
from orders.services.telemetry import record_telemetry
from orders.services.webhook_dispatch import Dispatcher
from orders.services.webhooks import event_bodies
from orders.store.db import Database
from orders.store.model import DeviceLink, DeviceModelSlot, Order, OrderEvent, Product
from tests.auth_fixtures import build_oauth_world, login_as
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.device_link_helpers import approve, start
from tests.e2e.hub_fixtures import build_devices
from tests.factories import build_world, db_snapshot
from tests.web_helpers import csrf_token
from voice_skill import speech


def _price(db: Database, sku: str, minor: int) -> None:
    with db.write() as session:
        session.execute(update(Product).where(Product.sku == sku).values(price_minor=minor))


def _agreed(db: Database, link_id: int) -> tuple[int | None, int | None]:
    with db.read() as session:
        link = session.get(DeviceLink, link_id)
        assert link is not None
        return link.consented_product_id, link.consented_price_minor


def _close_all(db: Database) -> None:
    with db.write() as session:
        session.execute(update(Order).values(status="delivered"))


def test_a_link_agrees_to_its_product_at_todays_price(db: Database) -> None:
    """Linking records the product and its price then; a later price change does not."""
    world = build_world(db, price_minor=450)
    with db.read() as session:
        pods = session.scalar(select(Product.id).where(Product.sku == "PODS"))
    _price(db, "PODS", 600)
    assert _agreed(db, world.link_id) == (pods, 450)


def test_a_dearer_press_waits_and_approving_agrees_to_the_new_price(db: Database) -> None:
    """Press after a rise: needs_approval `price_changed` with old and new in the event
    body; the shopper approves; the next press at that price is placed."""
    world = build_world(db)
    _price(db, "PODS", 650)
    held = press(db, world.device_id, 1)
    assert (held.outcome, held.order.status) == ("needs_approval", "pending_approval")
    assert held.order.summary()["reason"] == "price_changed"
    with db.read() as session:
        rows = list(session.scalars(select(OrderEvent).where(OrderEvent.order_id.is_not(None))))
        (body,) = event_bodies(session, rows).values()
    assert body["data"]["hold"] == {
        "reason": "price_changed",
        "was": {"sku": "PODS", "unit_price_minor": 500},
        "now": {"sku": "PODS", "unit_price_minor": 650},
    }
    lifecycle.approve_order(db, held.order.id, world.shopper_id)
    assert _agreed(db, world.link_id)[1] == 650
    _close_all(db)
    assert press(db, world.device_id, 2).outcome == "placed"


def test_the_shoppers_tolerance_lets_a_small_rise_through(db: Database) -> None:
    """Tolerance 1.00 per item: +1.00 is placed, +1.01 waits."""
    world = build_world(db, rules=LinkRules(product_sku="PODS", price_tolerance_minor=100))
    _price(db, "PODS", 600)
    assert press(db, world.device_id, 1).outcome == "placed"
    _close_all(db)
    _price(db, "PODS", 601)
    assert press(db, world.device_id, 2).order.hold is not None


def test_an_appliance_reorder_for_a_substituted_product_waits(db: Database) -> None:
    """A link that orders its slot's refill product (it names none itself) agreed to PODS;
    the merchant swaps the slot's product: the telemetry reorder is held `product_changed`,
    naming the agreed SKU and the new one."""
    devices = build_devices(db)
    with db.write() as session:
        aa = session.scalar(select(Product.id).where(Product.sku == "AA"))
        session.execute(
            update(DeviceLink)
            .where(DeviceLink.device_id == devices.appliance_id)
            .values(product_id=None)
        )
        session.execute(update(DeviceModelSlot).values(product_id=aa))
    result = record_telemetry(db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 1}])
    assert result.action == "needs_approval" and result.order is not None
    assert result.order.summary()["reason"] == "product_changed"
    hold = result.order.as_api()["hold"]
    assert (hold["was"]["sku"], hold["now"]["sku"]) == ("PODS", "AA")


def test_an_appliance_reorder_at_a_higher_price_waits(db: Database) -> None:
    """The slot's product got dearer since linking: the reorder is held `price_changed`."""
    devices = build_devices(db)
    _price(db, "PODS", 900)
    result = record_telemetry(db, devices.appliance_id, [{"n": "pods", "u": "count", "v": 1}])
    assert result.action == "needs_approval" and result.order is not None
    assert result.order.hold is not None and result.order.hold.reason == "price_changed"


def test_the_shoppers_order_page_shows_old_and_new_and_approves(app: Flask, db: Database) -> None:
    """My order page names both prices and offers Approve; approving places it."""
    t = build_tenants(db)
    _close_all(db)
    _price(db, "PODS", 720)
    order = press(db, t.ours.device_id, 2).order
    client = signed_in(app, t.shopper_email)
    page = client.get(f"/my/orders/{order.id}").text
    assert 'id="order-hold"' in page and "EUR 5.00" in page and "EUR 7.20" in page
    assert "Approve" in page
    assert "price changed" in client.get("/my/orders").text
    form_post(client, f"/my/orders/{order.id}/approve")
    approved = lifecycle.get_order(db, order.id, Viewer.shopper(t.ours.shopper_id))
    assert approved.status == "placed"
    assert _agreed(db, t.ours.link_id)[1] == 720


def test_voice_says_why_a_pending_order_waits(db: Database) -> None:
    """Asked about open orders, the skill says the price went up, from what to what."""
    world = build_world(db)
    _price(db, "PODS", 650)
    press(db, world.device_id, 1)
    spoken = speech.order_status(open_orders(db, world.shopper_id, world.store_id))
    assert "waiting for your approval, because its price went up from 5 euros to 6.50" in spoken


def test_the_link_page_shows_prices_and_takes_a_tolerance(app: Flask, db: Database) -> None:
    """The shopper sees each product's price where they pick it, may set a tolerance, and
    the new link agrees to the product at that price."""
    o = build_oauth_world(db)
    started = start(app.test_client(), o.button, "SN-NEW")
    browser = app.test_client()
    login_as(browser, o.shopper_account_id)
    page = browser.post("/link", data={"user_code": started["user_code"],
                        "csrf_token": csrf_token(browser.get("/link").text)})  # fmt: skip
    assert "Coffee pods (EUR 5.00)" in page.text and 'name="price_tolerance"' in page.text
    done = approve(browser, started["user_code"], product="PODS", price_tolerance="0.50")
    assert done.status_code == 200, done.text
    with db.read() as session:
        link = session.scalars(
            select(DeviceLink).where(DeviceLink.status == "active").order_by(DeviceLink.id.desc())
        ).first()
        pods = session.scalar(select(Product.id).where(Product.sku == "PODS"))
    assert link is not None
    assert (link.consented_product_id, link.consented_price_minor) == (pods, 500)
    assert link.price_tolerance_minor == 50


def test_a_negative_tolerance_is_refused_on_the_link_page(app: Flask, db: Database) -> None:
    """-1 is an error on its field and links nothing."""
    o = build_oauth_world(db)
    started = start(app.test_client(), o.button, "SN-NEG")
    browser = app.test_client()
    login_as(browser, o.shopper_account_id)
    before = db_snapshot(db)
    refused = approve(browser, started["user_code"], product="PODS", price_tolerance="-1")
    assert refused.status_code == 400
    assert db_snapshot(db) == before


def test_the_approval_notice_says_old_and_new(db: Database) -> None:
    """The shopper's approval notice names the agreed and the new price."""
    world = build_world(db)
    _price(db, "PODS", 650)
    press(db, world.device_id, 1)
    Dispatcher(db).run_once()
    (notice,) = [n for n in my_notices(db, world.shopper_id) if n.kind == "approval_needed"]
    assert "from EUR 5.00 to EUR 6.50 each" in notice.text.body
