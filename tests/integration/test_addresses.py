"""Delivery addresses: kept per shopper with one default, copied onto every order at
placement, never moved by later edits; pages, export and erasure (#16)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from auth.model import Account
from auth.revocation import delete_account
from orders.domain.addresses import ShipTo
from orders.domain.errors import InvalidRequest, NotFound, OrderRefused
from orders.queries.addresses import my_addresses
from orders.services import addresses
from orders.services.addresses import add_address
from orders.services.devices import LinkRules, active_link, update_link
from orders.services.ordering import LineRequest, OrderRequest, place_order, press
from orders.services.privacy import export_shopper
from orders.store.db import Database
from orders.store.model import Address, Order
from restock.seed import SHOPPER_EMAIL, seed_demo
from tests.dash_helpers import build_tenants, form_post, signed_in
from tests.factories import HOME, build_world, db_snapshot

OFFICE = {
    "name": "Ada L.",
    "line1": "1 Office Park",
    "line2": "Floor 3",
    "postcode": "EC1A 1BB",
    "city": "London",
    "region": "Greater London",
    "country": "gb",
    "phone": "+44 20 7946 0000",
}
HOME_SHIP_TO = ShipTo(HOME["name"], HOME["line1"], HOME["city"], HOME["country"],
                      postcode=HOME["postcode"])  # fmt: skip


def _web_order(db: Database, shopper_id: int, store_id: int, key: str = "k1") -> Order:
    view = place_order(
        db, OrderRequest(store_id, shopper_id, "web", (LineRequest("PODS", 1),), key)
    ).order
    with db.read() as session:
        order = session.get(Order, view.id)
        assert order is not None
        session.expunge(order)
        return order


def _drop_addresses(db: Database) -> None:
    with db.write() as session:
        session.execute(Address.__table__.delete())


def test_an_order_copies_the_default_address_it_ships_to(db: Database) -> None:
    """The order's ship_to is the shopper's default address at placement."""
    world = build_world(db)
    placed = press(db, world.device_id, 1).order
    assert placed.ship_to == HOME_SHIP_TO
    with db.read() as session:
        stored = session.get(Order, placed.id)
        assert stored is not None
        assert (stored.ship_name, stored.ship_postcode, stored.ship_country) == (
            "Ada Lovelace", "SW1Y 4JH", "GB",
        )  # fmt: skip


def test_editing_or_deleting_an_address_never_changes_a_placed_orders_snapshot(
    db: Database,
) -> None:
    """Placed orders keep their copy through an edit, a new default and a delete."""
    world = build_world(db)
    placed = press(db, world.device_id, 1).order
    [home] = my_addresses(db, world.shopper_id)
    addresses.edit_address(db, world.shopper_id, home.id, {**HOME, "line1": "99 Elsewhere Rd"})
    office = addresses.add_my_address(db, world.shopper_id, OFFICE, make_default=True)
    addresses.delete_address(db, world.shopper_id, home.id)
    with db.read() as session:
        stored = session.get(Order, placed.id)
        assert stored is not None and stored.ship_line1 == "12 St James's Square"
    later = _web_order(db, world.shopper_id, world.store_id)
    assert (later.ship_line1, later.ship_country) == ("1 Office Park", "GB")
    assert my_addresses(db, world.shopper_id)[0].id == office.id


@pytest.mark.parametrize("path", ["press", "web"])
def test_a_shopper_without_an_address_is_refused_needs_address_and_nothing_changes(
    db: Database, path: str
) -> None:
    """No address: OrderRefused(needs_address), and the database is exactly as before."""
    world = build_world(db)
    _drop_addresses(db)
    before = db_snapshot(db)
    with pytest.raises(OrderRefused) as refused:
        if path == "press":
            press(db, world.device_id, 1)
        else:
            _web_order(db, world.shopper_id, world.store_id)
    assert refused.value.reason == "needs_address"
    assert db_snapshot(db) == before


def test_a_link_that_names_an_address_ships_there_and_falls_back_when_it_is_deleted(
    db: Database,
) -> None:
    """The link's own address wins over the default; once deleted, the default ships."""
    world = build_world(db)
    with db.write() as session:
        office = add_address(session, world.shopper_id, OFFICE)
        link = active_link(session, world.device_id)
        assert link is not None and not office.is_default
        update_link(session, link, LinkRules(address_id=office.id))
        office_id = office.id
    first = press(db, world.device_id, 1).order
    assert first.ship_to is not None and first.ship_to.line1 == "1 Office Park"
    with db.write() as session:
        session.execute(update(Order).values(status="delivered"))
    addresses.delete_address(db, world.shopper_id, office_id)
    second = press(db, world.device_id, 2).order
    assert second.ship_to == HOME_SHIP_TO


def test_a_link_cannot_name_another_shoppers_address(db: Database) -> None:
    """Another shopper's address is as unknown as a missing one, and nothing changes."""
    ours, theirs = build_world(db, slug="ours"), build_world(db, slug="theirs")
    [their_home] = my_addresses(db, theirs.shopper_id)
    with pytest.raises(InvalidRequest) as refused, db.write() as session:
        link = active_link(session, ours.device_id)
        assert link is not None
        update_link(session, link, LinkRules(address_id=their_home.id))
    assert refused.value.reason == "unknown_address"
    with pytest.raises(NotFound):
        addresses.edit_address(db, ours.shopper_id, their_home.id, OFFICE)
    with pytest.raises(NotFound):
        addresses.delete_address(db, ours.shopper_id, their_home.id)


def test_the_database_keeps_one_default_address_per_shopper(db: Database) -> None:
    """A second default row is refused by the partial unique index itself."""
    world = build_world(db)
    with pytest.raises(IntegrityError), db.write() as session:
        session.add(Address(shopper_id=world.shopper_id, is_default=True, name="X",
                            line1="Y", city="Z", country="DE"))  # fmt: skip
        session.flush()


def test_making_an_address_default_moves_the_default_and_deleting_it_promotes_the_newest(
    db: Database,
) -> None:
    """One default at a time; deleting the default leaves the newest other one default."""
    world = build_world(db)
    [home] = my_addresses(db, world.shopper_id)
    office = addresses.add_my_address(db, world.shopper_id, OFFICE)
    assert not office.is_default
    addresses.make_default(db, world.shopper_id, office.id)
    defaults = [a.id for a in my_addresses(db, world.shopper_id) if a.is_default]
    assert defaults == [office.id]
    addresses.delete_address(db, world.shopper_id, office.id)
    assert [(a.id, a.is_default) for a in my_addresses(db, world.shopper_id)] == [(home.id, True)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "GBR"}, "country"),
        ({"line1": "  "}, "line1"),
        ({"phone": "call me"}, "phone"),
        ({"postcode": "1" * 21}, "postcode"),
    ],
)
def test_a_bad_address_is_refused_and_changes_nothing(
    db: Database, change: dict[str, str], field: str
) -> None:
    """bad_address names the field; no row is written."""
    world = build_world(db)
    before = db_snapshot(db)
    with pytest.raises(InvalidRequest) as refused:
        addresses.add_my_address(db, world.shopper_id, {**OFFICE, **change})
    assert refused.value.reason == "bad_address" and refused.value.detail.startswith(field)
    assert db_snapshot(db) == before


def test_the_export_includes_the_shoppers_addresses_and_orders_ship_to(db: Database) -> None:
    """Addresses with their default flag, and each order's ship_to."""
    world = build_world(db)
    press(db, world.device_id, 1)
    with db.read() as session:
        data = export_shopper(session, world.shopper_id)
    assert [(a["line1"], a["country"], a["is_default"]) for a in data["addresses"]] == [
        ("12 St James's Square", "GB", True)
    ]
    assert data["orders"][0]["ship_to"]["postcode"] == "SW1Y 4JH"


def test_erasure_deletes_addresses_and_anonymises_ship_to_on_past_orders(
    app: Flask, db: Database
) -> None:
    """No address rows left; past orders say 'erased' and keep no line, postcode or country."""
    t = build_tenants(db)
    with db.read() as session:
        account_id = session.scalar(select(Account.id).where(Account.email == t.shopper_email))
    assert account_id is not None
    delete_account(db, account_id)
    with db.read() as session:
        assert (
            session.scalars(select(Address).where(Address.shopper_id == t.ours.shopper_id)).all()
            == []
        )
        order = session.get(Order, t.order_id)
        their = session.get(Order, t.their_order_id)
        assert order is not None and their is not None
        assert (order.ship_name, order.ship_line1, order.ship_line2) == ("erased", "", None)
        assert (order.ship_postcode, order.ship_country, order.ship_phone) == (None, "", None)
        assert their.ship_name == "Ada Lovelace"  # another shopper's order is untouched


# --- the pages ----------------------------------------------------------------------------


def test_a_shopper_adds_edits_defaults_and_deletes_addresses_on_the_web(
    app: Flask, db: Database
) -> None:
    """/my/addresses: add, edit, make default, delete after a confirmation page."""
    t = build_tenants(db)
    web = signed_in(app, t.shopper_email)
    assert "12 St James" in web.get("/my/addresses").text
    added = form_post(web, "/my/addresses/new", OFFICE)
    assert added.status_code == 302
    [home, office] = sorted(my_addresses(db, t.ours.shopper_id), key=lambda a: a.id)
    assert office.address.country == "GB" and not office.is_default
    form = web.get(f"/my/addresses/{office.id}/edit")
    assert form.status_code == 200 and "1 Office Park" in form.text
    edited = form_post(web, f"/my/addresses/{office.id}/edit", {**OFFICE, "city": "Leeds"})
    assert edited.status_code == 302
    assert form_post(web, f"/my/addresses/{office.id}/default").status_code == 302
    assert [a.id for a in my_addresses(db, t.ours.shopper_id) if a.is_default] == [office.id]
    confirm = web.get(f"/my/addresses/{home.id}/delete")
    assert confirm.status_code == 200 and "Delete this address" in confirm.text
    assert form_post(web, f"/my/addresses/{home.id}/delete").status_code == 302
    [left] = my_addresses(db, t.ours.shopper_id)
    assert (left.id, left.address.city, left.is_default) == (office.id, "Leeds", True)


def test_a_bad_country_on_the_web_is_an_error_on_its_field_and_writes_nothing(
    app: Flask, db: Database
) -> None:
    """400, the message beside the country field, the database unchanged."""
    t = build_tenants(db)
    web = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    answer = form_post(web, "/my/addresses/new", {**OFFICE, "country": "ZZ"})
    assert answer.status_code == 400
    assert 'id="country-error"' in answer.text and "ISO 3166-1" in answer.text
    assert db_snapshot(db) == before


def test_another_shoppers_address_pages_are_not_found(app: Flask, db: Database) -> None:
    """Editing or deleting someone else's address: 404, nothing changes."""
    t = build_tenants(db)
    [theirs] = my_addresses(db, t.theirs.shopper_id)
    web = signed_in(app, t.shopper_email)
    before = db_snapshot(db)
    assert web.get(f"/my/addresses/{theirs.id}/edit").status_code == 404
    assert form_post(web, f"/my/addresses/{theirs.id}/delete").status_code == 404
    assert db_snapshot(db) == before


def test_a_shopper_without_an_address_is_asked_for_one(app: Flask, db: Database) -> None:
    """My orders and my devices say orders need an address, and link to the form."""
    t = build_tenants(db)
    web = signed_in(app, t.shopper_email)
    assert 'id="needs-address"' not in web.get("/my/orders").text
    _drop_addresses(db)
    for page in ("/my/orders", "/my/devices", "/my/addresses"):
        text = web.get(page).text
        assert 'id="needs-address"' in text and "/my/addresses/new" in text


def test_the_address_form_returns_to_a_local_next_page_only(app: Flask, db: Database) -> None:
    """`next` on this site is followed after saving; another host's is ignored."""
    t = build_tenants(db)
    web = signed_in(app, t.shopper_email)
    back = form_post(web, "/my/addresses/new?next=/link%3Fuser_code%3DBCDF", OFFICE)
    assert back.headers["Location"] == "/link?user_code=BCDF"
    away = form_post(web, "/my/addresses/new?next=//evil.example/", OFFICE)
    assert away.headers["Location"] == "/my/addresses"


def test_the_merchant_order_page_shows_the_customer_and_the_ship_to_address(
    app: Flask, db: Database
) -> None:
    """Customer name and e-mail, and the address copied onto the order."""
    t = build_tenants(db)
    page = signed_in(app, t.merchant_email).get(f"/stores/{t.ours.store_id}/orders/{t.order_id}")
    assert page.status_code == 200
    assert "Ada" in page.text and "ada@ours.test" in page.text
    assert "12 St James" in page.text and "SW1Y 4JH" in page.text


def test_the_demo_seed_gives_the_demo_shopper_one_default_address_once(db: Database) -> None:
    """`seed --demo` (CONTRACT): a default delivery address; a second run adds none."""
    seed_demo(db)
    seed_demo(db)
    with db.read() as session:
        query = select(Account.shopper_id).where(Account.email == SHOPPER_EMAIL)
        shopper_id = session.scalar(query)
    assert shopper_id is not None
    [only] = my_addresses(db, shopper_id)
    assert only.is_default and only.address.country == "DE"
