"""Browser journeys' shared steps: a phone and a desktop window, sign-in, and the checks every
page visited must pass (axe-core with no serious or critical violation, no sideways scroll at
390 px, no script of ours), with a screenshot of each step under var/ for CI artifacts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.dash_helpers import PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    """axe-core's browser build, as the pinned axe-playwright-python package ships it."""
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()


@dataclass
class Journey:
    """One journey in one window size: its pages, checked and photographed step by step."""

    page: Any
    base: str
    name: str
    viewport: str
    errors: list[str] = field(default_factory=list)
    steps: int = 0

    def go(self, path: str) -> None:
        """Open a path of the site and check the page."""
        self.page.goto(f"{self.base}{path}")
        self.check(path.strip("/").replace("/", "-").split("?")[0] or "home")

    def check(self, step: str) -> None:
        """axe-core in the page, the width at phone size, then a screenshot named after `step`."""
        page = self.page
        page.wait_for_load_state()
        self.steps += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{self.name}-{self.viewport}-{self.steps:02d}-{_slug(step)}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.locator("script").count() == 0, f"{page.url}: pages must work without scripts"
        if page.evaluate("typeof window.axe") == "undefined":
            page.evaluate(axe_source())
        found = page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
            "v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' '))})))"
        )
        blocking = [v for v in found if v["impact"] in BLOCKING]
        assert blocking == [], f"{page.url} ({shot.name}): {blocking}"
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{page.url} ({shot.name}) scrolls sideways by {overflow}px"

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        """Sign in on /login (checked like every page) and land on the start page."""
        self.go("/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.base}/")
        self.check("home")

    def open_menu(self) -> None:
        """On a phone the navigation sits behind the Menu button; open it (no-op on desktop)."""
        if self.viewport == "phone":
            self.page.locator("details.nav-narrow > summary").click()
            self.check("menu-open")

    def nav(self, name: str) -> None:
        """Follow a main-navigation link as a person would at this window size."""
        self.open_menu()
        where = "details.nav-narrow" if self.viewport == "phone" else "nav.nav-wide"
        self.page.locator(where).get_by_role("link", name=name).click()
        self.check(name)


@contextmanager
def journey(browser: Any, base: str, name: str, viewport: str) -> Iterator[Journey]:
    """A fresh browser context at `viewport` size; console errors fail the journey."""
    for stale in SCREENSHOTS.glob(f"{name}-{viewport}-*.png"):  # a rerun's steps only
        stale.unlink()
    # axe is injected as an inline script, which the site's CSP (rightly) refuses.
    context = browser.new_context(viewport=VIEWPORTS[viewport], bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    trip = Journey(page, base, name, viewport)
    page.on("console", lambda m: _console(trip, m))
    page.on("pageerror", lambda exc: trip.errors.append(str(exc)))
    # A page answering 4xx is often the point (a 404, a refused form); a missing style or
    # icon never is.
    page.on("response", lambda r: _subresource(trip, r))
    try:
        yield trip
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport}-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert trip.errors == [], trip.errors


def _console(trip: Journey, message: Any) -> None:
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        trip.errors.append(message.text)


def _subresource(trip: Journey, response: Any) -> None:
    if response.status >= 400 and response.request.resource_type != "document":
        trip.errors.append(f"{response.status} {response.url}")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "page"


@dataclass(frozen=True)
class DemoStore:
    """What `seed_store` made: a store with two products, a button model, two accounts."""

    store_id: int
    button_client_id: str
    shopper_id: int
    shopper_email: str = "grace@journey.test"
    merchant_email: str = "merchant@journey.test"


def seed_store(db: Any) -> DemoStore:
    """A store in Europe/Berlin with coffee pods and tea, a button model, a merchant, a shopper."""
    from auth.clients import create_device_model_client
    from orders.services.catalog import add_product, create_store
    from orders.store.model import Store
    from tests.dash_helpers import add_account
    from tests.factories import shopper_with_address

    with db.write() as session:
        store = create_store(session, slug="journey", name="Corner Shop", currency="EUR")
        add_product(session, store, sku="PODS", name="Coffee pods", price_minor=1599, stock=50)
        add_product(session, store, sku="TEA-40", name="Green tea (40 bags)", price_minor=450,
                    stock=4)  # fmt: skip
        session.get_one(Store, store.id).time_zone = "Europe/Berlin"
        store_id = store.id
    _model, client_id = create_device_model_client(
        db, store_id, name="Reorder Button", kind="button", skus=["PODS", "TEA-40"]
    )
    demo = DemoStore(store_id, client_id, 0)
    add_account(db, demo.merchant_email, store_id=store_id)
    with db.write() as session:
        shopper_id = shopper_with_address(session, name="Grace", email=demo.shopper_email).id
    add_account(db, demo.shopper_email, shopper_id=shopper_id)
    return DemoStore(store_id, client_id, shopper_id)


def link_button(trip: Journey, user_code: str, *, product: str = "PODS") -> None:
    """The shopper enters a device's code on /link, picks the product and rules, approves."""
    trip.go(f"/link?user_code={user_code}")
    trip.page.get_by_role("button", name="Continue").click()
    trip.check("link-confirm")
    trip.page.get_by_label("Product this device orders").select_option(product)
    trip.page.get_by_label("Largest single order").fill("40")
    trip.page.get_by_label("Monthly spending limit").fill("120")
    trip.page.get_by_role("button", name="Approve and link").click()
    trip.check("link-done")
