"""People's journeys in Chromium at desktop (1280×800) and phone (390×844) size: every page
visited passes axe-core (no serious or critical violation) and has no sideways scroll."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from auth.device_flow import start_device_authorization
from orders.services.ordering import press
from orders.store.model import Device, DeviceLink, Order
from tests.e2e.browser_pages import journey, link_button, seed_store
from tests.e2e.dash_fixtures import LiveServer
from tests.e2e.dash_fixtures import chromium as chromium  # noqa: F401 - fixture
from tests.e2e.dash_fixtures import live_server as live_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e
SIZES = pytest.mark.parametrize("viewport", ["desktop", "phone"])


def _linked_button(server: LiveServer, user_code: str) -> tuple[int, DeviceLink]:
    with server.db.read() as session:
        link = session.scalars(select(DeviceLink).order_by(DeviceLink.id.desc())).first()
        assert link is not None
        session.expunge(link)
        return link.device_id, link


@SIZES
def test_a_shopper_links_a_button_and_sets_its_rules(
    live_server: LiveServer,  # noqa: F811
    chromium: Any,  # noqa: F811
    viewport: str,
) -> None:
    """Sign-up page, sign-in, /link with product and caps in euros, the success page leads on."""
    demo = seed_store(live_server.db)
    base = live_server.base_url
    code = start_device_authorization(
        live_server.db, client_id=demo.button_client_id, public_url=base, serial="BTN-J-1"
    ).user_code
    with journey(chromium, base, "link", viewport) as trip:
        trip.go("/signup")
        trip.go("/no-such-page")
        assert trip.page.get_by_role("heading", level=1).inner_text().startswith("404")
        trip.sign_in(demo.shopper_email)
        trip.go("/link")
        trip.page.get_by_label("Code shown on your device").fill("WRON-GCOD")
        trip.page.get_by_role("button", name="Continue").click()
        trip.check("link-wrong-code")
        field = trip.page.get_by_label("Code shown on your device")
        assert field.get_attribute("aria-invalid") == "true"
        assert (
            "doesn't match"
            in trip.page.locator(f"#{field.get_attribute('aria-describedby')}").inner_text()
        )
        link_button(trip, code)
        assert "is linked" in trip.page.get_by_role("status").inner_text()
        trip.page.get_by_role("link", name="See your devices and their rules").click()
        trip.check("my-devices")
        assert trip.page.locator("li.card", has_text="BTN-J-1").count() == 1
    _device_id, link = _linked_button(live_server, code)
    assert (link.per_order_cap_minor, link.monthly_cap_minor) == (4000, 12000)


@SIZES
def test_a_shopper_cancels_inside_the_window_after_being_asked(
    live_server: LiveServer,  # noqa: F811
    chromium: Any,  # noqa: F811
    viewport: str,
) -> None:
    """My orders → Cancel… → a question naming the order → yes: cancelled, and said so."""
    demo = seed_store(live_server.db)
    base = live_server.base_url
    code = start_device_authorization(
        live_server.db, client_id=demo.button_client_id, public_url=base, serial="BTN-J-2"
    ).user_code
    with journey(chromium, base, "cancel", viewport) as trip:
        trip.sign_in(demo.shopper_email)
        link_button(trip, code)
        device_id, _link = _linked_button(live_server, code)
        order = press(live_server.db, device_id, 1).order
        trip.nav("My orders")
        row = trip.page.locator(f"#order-{order.id}")
        assert "CET" in row.inner_text()  # the store's zone (Europe/Berlin), not UTC
        row.get_by_role("link", name="Cancel…").click()
        trip.check("cancel-question")
        assert "Coffee pods" in trip.page.get_by_role("heading", level=1).inner_text()
        trip.page.get_by_role("button", name="Yes, cancel the order").click()
        trip.check("cancelled")
        assert "Order cancelled" in trip.page.get_by_role("status").inner_text()
        assert "cancelled" in trip.page.locator(f"#order-{order.id}").inner_text()
    with live_server.db.read() as session:
        assert session.get_one(Order, order.id).status == "cancelled"


@SIZES
def test_the_merchant_ships_and_the_shopper_sees_it(
    live_server: LiveServer,  # noqa: F811
    chromium: Any,  # noqa: F811
    viewport: str,
) -> None:
    """Store home with today's figures → the order → Mark shipped; the shopper sees shipped."""
    demo = seed_store(live_server.db)
    base = live_server.base_url
    code = start_device_authorization(
        live_server.db, client_id=demo.button_client_id, public_url=base, serial="BTN-J-3"
    ).user_code
    with journey(chromium, base, "ship-shopper", viewport) as shopper:
        shopper.sign_in(demo.shopper_email)
        link_button(shopper, code)
    device_id, _link = _linked_button(live_server, code)
    order = press(live_server.db, device_id, 1).order
    with journey(chromium, base, "ship-merchant", viewport) as merchant:
        merchant.sign_in(demo.merchant_email)
        merchant.nav("Corner Shop")
        figures = merchant.page.locator("#today").inner_text()
        assert "Orders today" in figures and "EUR 15.99" in figures
        merchant.page.get_by_role("link", name=f"Order {order.id[:8]}").first.click()
        merchant.check("order")
        merchant.page.get_by_label("Tracking reference").fill("DHL-4455")
        merchant.page.get_by_role("button", name="Mark shipped").click()
        merchant.check("shipped")
        assert "Marked shipped" in merchant.page.get_by_role("status").inner_text()
        merchant.go(f"/stores/{demo.store_id}/")
        merchant.page.get_by_label("Search orders, devices and products").fill("green TEA")
        merchant.page.get_by_role("button", name="Search").click()
        merchant.check("search")
        merchant.page.get_by_role("link", name="Green tea (40 bags)").click()
        merchant.check("product")
        merchant.page.get_by_label("Low-stock level").fill("3")
        merchant.page.get_by_role("button", name="Save").click()
        merchant.check("product-saved")
        assert "Saved" in merchant.page.get_by_role("status").inner_text()
        merchant.go(f"/stores/{demo.store_id}/integrations")
        merchant.page.get_by_label("Redirect URIs (one per line)").fill("not a url")
        merchant.page.get_by_role("button", name="Create the Alexa client").click()
        merchant.check("alexa-refused")
        uris = merchant.page.get_by_label("Redirect URIs (one per line)")
        assert uris.get_attribute("aria-invalid") == "true"
        uris.fill("https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA")
        merchant.page.get_by_role("button", name="Create the Alexa client").click()
        merchant.check("alexa-created")
        assert merchant.page.get_by_label("Access Token URI").input_value() == f"{base}/oauth/token"
        assert merchant.page.get_by_label("Your Client ID").input_value()
        merchant.page.get_by_role("link", name="Rotate the Alexa client secret…").click()
        merchant.check("rotate-question")
        merchant.page.get_by_role("link", name="Keep the current secret").click()
        merchant.check("rotate-kept")
        for page in ("products", "low-stock", "devices", "orders"):
            merchant.go(f"/stores/{demo.store_id}/{page}")
        merchant.go(f"/stores/{demo.store_id}/devices/{device_id}/revoke")
        assert "Revoke device" in merchant.page.get_by_role("heading", level=1).inner_text()
    with journey(chromium, base, "ship-seen", viewport) as shopper:
        shopper.sign_in(demo.shopper_email)
        shopper.nav("My orders")
        row = shopper.page.locator(f"#order-{order.id}")
        assert "shipped" in row.inner_text() and "DHL-4455" in row.inner_text()
        shopper.go(f"/my/orders/{order.id}")
        shopper.go("/settings")
    with live_server.db.read() as session:
        assert session.scalar(select(Device.id).where(Device.id == device_id)) == device_id
