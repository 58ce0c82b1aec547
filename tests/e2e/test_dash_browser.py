"""In a real browser: a shopper links and pauses a device, a merchant ships its order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from auth.clients import create_device_model_client
from auth.device_flow import decide_device, start_device_authorization
from orders.services.catalog import SlotSpec, add_product, create_store
from orders.services.ordering import press
from orders.store.db import utcnow
from orders.store.model import Device
from tests.dash_helpers import PASSWORD, add_account, add_readings
from tests.e2e.dash_fixtures import ARTIFACTS, LiveServer
from tests.e2e.dash_fixtures import chromium as chromium  # noqa: F401 - fixture
from tests.e2e.dash_fixtures import live_server as live_server  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e
SERIAL = "BTN-E2E-0001"


def _seed(server: LiveServer) -> tuple[int, str, int]:
    """A store with a product and a button model; a merchant and a shopper account."""
    with server.db.write() as session:
        store = create_store(session, slug="e2e", name="Corner Shop", currency="EUR")
        add_product(session, store, sku="PODS", name="Coffee pods", price_minor=1599, stock=50)
        store_id = store.id
    _model_id, client_id = create_device_model_client(
        server.db, store_id, name="Reorder Button", kind="button", skus=["PODS"]
    )
    add_account(server.db, "merchant@e2e.test", store_id=store_id)
    with server.db.write() as session:
        from tests.factories import shopper_with_address

        shopper_id = shopper_with_address(session, name="Grace", email="grace@e2e.test").id
    account_id = add_account(server.db, "grace@e2e.test", shopper_id=shopper_id)
    return store_id, client_id, account_id


@contextmanager
def _page(browser: Any, name: str, errors: list[str], *, javascript: bool = False) -> Iterator[Any]:
    """A fresh browser context (JavaScript off unless asked: every page must work without it);
    console errors are collected and a screenshot is saved on failure."""
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"dash-{name}-failure.png"), full_page=True)
        raise
    finally:
        context.close()


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def _link(page: Any, base: str, user_code: str) -> None:
    """The shopper enters the device's code on auth's /link page and approves it."""
    page.goto(f"{base}/link?user_code={user_code}")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Product").select_option("PODS")
    page.get_by_role("button", name="Approve and link").click()
    page.wait_for_load_state()


def test_link_pause_ship_and_see_the_status(live_server: LiveServer, chromium: Any) -> None:  # noqa: F811
    """Shopper links and pauses a button; merchant finds it and ships; shopper sees shipped."""
    base = live_server.base_url
    store_id, client_id, _account_id = _seed(live_server)
    started = start_device_authorization(
        live_server.db, client_id=client_id, public_url=base, serial=SERIAL
    )
    errors: list[str] = []

    with _page(chromium, "shopper", errors) as shopper:
        _sign_in(shopper, base, "grace@e2e.test")
        _link(shopper, base, started.user_code)
        shopper.goto(f"{base}/my/devices")
        card = shopper.locator("li.card", has_text=SERIAL)
        assert card.count() == 1
        order = press(live_server.db, card_device_id(card), 1).order
        shopper.get_by_role("button", name=f"Pause Reorder Button {SERIAL}").click()
        shopper.wait_for_url(f"{base}/my/devices")
        assert "Paused" in shopper.get_by_role("status").inner_text()
        assert shopper.locator("li.card", has_text=SERIAL).locator(".badge.paused").count() == 1
        shopper.screenshot(path=str(_artifact("dash-my-devices.png")), full_page=True)

    with _page(chromium, "merchant", errors) as merchant:
        _sign_in(merchant, base, "merchant@e2e.test")
        merchant.goto(f"{base}/stores/{store_id}/devices")
        merchant.get_by_label("Serial number").fill(SERIAL)
        merchant.get_by_label("Status").select_option("paused")
        merchant.get_by_role("button", name="Find").click()
        merchant.get_by_role("link", name=SERIAL).click()
        assert "paused" in merchant.locator("dl").inner_text()
        merchant.locator("main ul a").first.click()
        merchant.get_by_label("Tracking reference").fill("DHL-778899")
        merchant.get_by_role("button", name="Mark shipped").click()
        assert "Marked shipped" in merchant.get_by_role("status").inner_text()
        assert "shipped" in merchant.locator("#order-status").inner_text()
        merchant.screenshot(path=str(_artifact("dash-merchant-order.png")), full_page=True)

    with _page(chromium, "shopper-after", errors) as shopper:
        _sign_in(shopper, base, "grace@e2e.test")
        shopper.goto(f"{base}/my/orders")
        row = shopper.locator(f"#order-{order.id}")
        assert "shipped" in row.inner_text() and "DHL-778899" in row.inner_text()
        shopper.screenshot(path=str(_artifact("dash-my-orders.png")), full_page=True)

    assert errors == []


def test_the_dashboard_works_by_keyboard_alone(live_server: LiveServer, chromium: Any) -> None:  # noqa: F811
    """The skip link comes first and moves focus to main; forms are reachable with Tab."""
    base = live_server.base_url
    _seed(live_server)
    errors: list[str] = []
    with _page(chromium, "keyboard", errors, javascript=True) as page:
        _sign_in(page, base, "grace@e2e.test")
        page.goto(f"{base}/my/voice")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "pin":
                break
        assert page.evaluate("document.activeElement.id") == "pin"
        page.keyboard.type("2468")
        page.keyboard.press("Enter")
        assert "Voice PIN saved" in page.get_by_role("status").inner_text()
    assert errors == []


def card_device_id(card: Any) -> int:
    """The device id a My-devices card carries in its element id."""
    return int(card.get_attribute("id").removeprefix("device-"))


def _artifact(name: str) -> Any:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def test_supply_charts_render_as_svg_with_a_text_alternative(
    live_server: LiveServer,  # noqa: F811
    chromium: Any,  # noqa: F811
) -> None:
    """An appliance's recent levels draw as a visible SVG whose accessible name reads them."""
    base = live_server.base_url
    store_id, _client_id, account_id = _seed(live_server)
    _model_id, appliance = create_device_model_client(
        live_server.db, store_id, name="Coffee machine", kind="appliance",
        slot=SlotSpec("pods", "count", 50, "PODS", 50),
    )  # fmt: skip
    started = start_device_authorization(
        live_server.db, client_id=appliance, public_url=base, serial="CM-1"
    )
    decide_device(live_server.db, user_code=started.user_code, account_id=account_id,
                  approve=True)  # fmt: skip
    device_id = _device_id(live_server, "CM-1")
    add_readings(live_server.db, device_id, [48, 44, 41, 35, 30, 24, 19, 12, 8], start=utcnow())
    errors: list[str] = []
    with _page(chromium, "charts", errors) as shopper:
        _sign_in(shopper, base, "grace@e2e.test")
        shopper.goto(f"{base}/my/devices")
        chart = shopper.get_by_role("img", name=re.compile(r"pods: 8 of 50 count \(16%\)"))
        box = chart.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 30
        shopper.screenshot(path=str(_artifact("dash-my-devices-chart.png")), full_page=True)
    with _page(chromium, "charts-merchant", errors) as merchant:
        _sign_in(merchant, base, "merchant@e2e.test")
        merchant.goto(f"{base}/stores/{store_id}/devices?low=1")
        merchant.get_by_role("link", name="CM-1").click()
        assert merchant.get_by_role("img", name=re.compile("low")).is_visible()
        merchant.screenshot(path=str(_artifact("dash-device-detail.png")), full_page=True)
    assert errors == []


def _device_id(server: LiveServer, serial: str) -> int:
    with server.db.read() as session:
        found = session.scalar(select(Device.id).where(Device.serial == serial))
        assert found is not None
        return int(found)
