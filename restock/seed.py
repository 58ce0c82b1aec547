"""`seed --demo`: an idempotent demo store, its people, device models and OAuth clients."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.accounts import create_account
from auth.model import Account, OAuthClient
from auth.passwords import generate_password
from auth.principal import DEVICE_SCOPES, MERCHANT_API_SCOPES, SHOPPER_SCOPES
from auth.tokens import token_hash
from orders.domain.maintenance import ConditionSpec
from orders.services.addresses import add_address
from orders.services.catalog import (
    SlotSpec,
    add_product,
    condition_of,
    create_device_model,
    create_store,
)
from orders.store.db import Database
from orders.store.model import Address, DeviceModel, Product, Store

DEMO_SLUG = "demo"
MERCHANT_EMAIL = "merchant@demo.restock.test"
SHOPPER_EMAIL = "shopper@demo.restock.test"
ALEXA_REDIRECT = "https://pitangui.amazon.com/api/skill/link/RESTOCKDEMO"
# The demo shopper's default delivery address: an order needs one (a made-up street).
DEMO_ADDRESS = {
    "name": "Demo Shopper",
    "line1": "Musterstraße 1",
    "postcode": "10115",
    "city": "Berlin",
    "country": "DE",
}

PRODUCTS = [
    # sku, name, price_minor, stock, pack_size, spoken aliases
    ("COF-PODS-50", "Coffee pods (50)", 1599, 500, 50, ["coffee pods", "coffee", "pods"]),
    ("BAT-AA-8", "AA batteries (8)", 899, 300, 8, ["double a batteries", "batteries"]),
    ("DET-LIQ-2L", "Laundry detergent 2 l", 1249, 200, 1, ["detergent", "washing liquid"]),
    ("INK-BLK", "Black ink cartridge", 2499, 150, 1, ["ink", "black ink", "printer ink"]),
    ("MILK-1L", "Milk 1 l", 129, 400, 1, ["milk"]),
]
# Added apart from the store (like the API client), so a demo seeded before has them too.
PRINTER_PRODUCTS = [
    ("INK-CYN", "Cyan ink cartridge", 1999, 150, 1, ["cyan ink"]),
    ("INK-MAG", "Magenta ink cartridge", 1999, 150, 1, ["magenta ink"]),
    ("INK-YEL", "Yellow ink cartridge", 1999, 150, 1, ["yellow ink"]),
]
MAINTENANCE_PRODUCTS = [
    ("DESC-KIT", "Descaling kit", 999, 100, 1, ["descaler", "descaling kit"]),
]
PRINTER_NAME = "Restock Printer"
PRINTER_SLOTS = [
    SlotSpec("cyan_ink", "%", 100, "INK-CYN", 100),
    SlotSpec("magenta_ink", "%", 100, "INK-MAG", 100),
    SlotSpec("yellow_ink", "%", 100, "INK-YEL", 100),
    SlotSpec("black_ink", "%", 100, "INK-BLK", 100, policy="predictive"),
]
COFFEE_CONDITIONS = [
    ConditionSpec("descale", "flag", "Descale the machine: it is calcifying.", sku="DESC-KIT"),
    ConditionSpec(
        "cycles_since_descale", "counter", "Descaling is due (300 cycles since the last).",
        threshold=300, sku="DESC-KIT",
    ),
    ConditionSpec("error", "code", "The machine reported an error; see its manual."),
]  # fmt: skip


@dataclass(frozen=True)
class SeedResult:
    """What `seed --demo` reports; passwords and secrets only when created this time."""

    store_id: int
    merchant: dict[str, str | None]
    shopper: dict[str, str | None]
    products: list[dict[str, Any]]
    clients: dict[str, Any]
    created: bool

    def as_json(self) -> dict[str, Any]:
        """The CONTRACT.md shape."""
        return {
            "store_id": self.store_id,
            "merchant": self.merchant,
            "shopper": self.shopper,
            "products": self.products,
            "clients": self.clients,
        }


def seed_demo(db: Database) -> SeedResult:
    """Create the demo store once; later runs report the same store and no passwords."""
    return db.run_write(_seed)


def _seed(session: Session) -> SeedResult:
    store = session.scalar(select(Store).where(Store.slug == DEMO_SLUG))
    created = store is None
    merchant_password = shopper_password = alexa_secret = None
    if store is None:
        store = create_store(session, slug=DEMO_SLUG, name="Restock Demo Store", currency="EUR")
        for sku, name, price, stock, pack, aliases in PRODUCTS:
            add_product(
                session, store, sku=sku, name=name, price_minor=price, stock=stock,
                pack_size=pack, aliases=aliases,
            )  # fmt: skip
        button = create_device_model(
            session, store, name="Restock Button", kind="button",
            skus=["COF-PODS-50", "BAT-AA-8", "DET-LIQ-2L"], security="bearer",
        )  # fmt: skip
        appliance = create_device_model(
            session, store, name="Restock Coffee Machine", kind="appliance",
            slots=[SlotSpec("pods", "count", 50, "COF-PODS-50", 50)], security="bearer",
        )  # fmt: skip
        for model in (button, appliance):
            _device_client(session, model)
        alexa_secret = secrets.token_urlsafe(32)
        session.add(
            OAuthClient(
                client_id=f"alexa-{secrets.token_urlsafe(9)}",
                client_secret_hash=token_hash(alexa_secret),
                name="Alexa account linking",
                kind="alexa",
                store_id=store.id,
                redirect_uris=[ALEXA_REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                scope=SHOPPER_SCOPES,
                token_endpoint_auth_method="client_secret_basic",
            )
        )
        merchant_password = generate_password()
        create_account(session, email=MERCHANT_EMAIL, password=merchant_password, store_id=store.id)
        shopper_password = generate_password()
        create_account(
            session, email=SHOPPER_EMAIL, password=shopper_password, shopper_name="Demo Shopper"
        )
        session.flush()
    _give_demo_shopper_an_address(session)
    _oscore_models(session, store)
    _coffee_machine_maintenance(session, store)
    _printer(session, store)
    api_secret = _merchant_api_client(session, store)
    return _report(
        session, store, created, merchant_password, shopper_password, alexa_secret, api_secret
    )


def _oscore_models(session: Session, store: Store) -> None:
    """A button and a coffee machine that speak OSCORE (`simulate … --oscore`)."""
    # Made apart from the store, so a demo store seeded before OSCORE gets them too.
    taken = select(DeviceModel.id).where(
        DeviceModel.store_id == store.id, DeviceModel.security == "oscore"
    )
    if session.scalar(taken.limit(1)) is not None:
        return
    button = create_device_model(
        session, store, name="Restock Button (OSCORE)", kind="button",
        skus=["COF-PODS-50", "BAT-AA-8", "DET-LIQ-2L"], security="oscore",
    )  # fmt: skip
    appliance = create_device_model(
        session, store, name="Restock Coffee Machine (OSCORE)", kind="appliance",
        slots=[SlotSpec("pods", "count", 50, "COF-PODS-50", 50)], security="oscore",
    )  # fmt: skip
    for model in (button, appliance):
        session.add(
            OAuthClient(
                client_id=model.client_id,
                name=model.name,
                kind="device_model",
                store_id=store.id,
                grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
                scope=DEVICE_SCOPES,
                token_endpoint_auth_method="none",
            )
        )
    session.flush()


def _device_client(session: Session, model: DeviceModel) -> None:
    session.add(
        OAuthClient(
            client_id=model.client_id,
            name=model.name,
            kind="device_model",
            store_id=model.store_id,
            grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            scope=DEVICE_SCOPES,
            token_endpoint_auth_method="none",
        )
    )


def _add_missing_products(session: Session, store: Store, rows: list[Any]) -> None:
    have = set(session.scalars(select(Product.sku).where(Product.store_id == store.id)))
    for sku, name, price, stock, pack, aliases in rows:
        if sku not in have:
            add_product(
                session, store, sku=sku, name=name, price_minor=price, stock=stock,
                pack_size=pack, aliases=aliases,
            )  # fmt: skip


def _coffee_machine_maintenance(session: Session, store: Store) -> None:
    """The coffee machine reports descaling (a flag and a cycle counter) and error codes."""
    _add_missing_products(session, store, MAINTENANCE_PRODUCTS)
    machine = session.scalar(
        select(DeviceModel).where(
            DeviceModel.store_id == store.id, DeviceModel.name == "Restock Coffee Machine"
        )
    )
    if machine is None or machine.conditions:
        return
    for spec in COFFEE_CONDITIONS:
        machine.conditions.append(condition_of(session, store, spec))
    session.flush()


def _printer(session: Session, store: Store) -> None:
    """A printer with four ink slots, each refilled by its own cartridge."""
    _add_missing_products(session, store, PRINTER_PRODUCTS)
    found = session.scalar(
        select(DeviceModel.id).where(
            DeviceModel.store_id == store.id, DeviceModel.name == PRINTER_NAME
        )
    )
    if found is None:
        printer = create_device_model(
            session,
            store,
            name=PRINTER_NAME,
            kind="appliance",
            slots=PRINTER_SLOTS,
            security="bearer",
        )
        _device_client(session, printer)
        session.flush()


def _merchant_api_client(session: Session, store: Store) -> str | None:
    """The demo store's API client with every merchant scope; its secret when made now."""
    # Made apart from the store, so a demo store seeded before the API gets one too.
    if _api_client(session, store) is not None:
        return None
    secret = secrets.token_urlsafe(32)
    session.add(
        OAuthClient(
            client_id=f"api-{secrets.token_urlsafe(9)}",
            client_secret_hash=token_hash(secret),
            name="Demo integration",
            kind="merchant_api",
            store_id=store.id,
            grant_types=["client_credentials"],
            scope=" ".join(MERCHANT_API_SCOPES),
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    session.flush()
    return secret


def _api_client(session: Session, store: Store) -> OAuthClient | None:
    return session.scalar(
        select(OAuthClient)
        .where(OAuthClient.store_id == store.id, OAuthClient.kind == "merchant_api")
        .order_by(OAuthClient.id)
        .limit(1)
    )


def _give_demo_shopper_an_address(session: Session) -> None:
    """The demo shopper's default address, also for a demo seeded before addresses."""
    shopper_id = session.scalar(select(Account.shopper_id).where(Account.email == SHOPPER_EMAIL))
    if shopper_id is None:
        return
    if session.scalar(select(Address.id).where(Address.shopper_id == shopper_id).limit(1)) is None:
        add_address(session, shopper_id, DEMO_ADDRESS)


def _report(
    session: Session,
    store: Store,
    created: bool,
    merchant_password: str | None,
    shopper_password: str | None,
    alexa_secret: str | None,
    api_secret: str | None,
) -> SeedResult:
    models: dict[str, str] = {}
    for m in session.scalars(
        select(DeviceModel).where(DeviceModel.store_id == store.id).order_by(DeviceModel.id)
    ):
        if m.name == PRINTER_NAME:
            models.setdefault("printer", m.client_id)
            continue
        name = m.kind if m.security == "bearer" else f"{m.kind}_oscore"
        models.setdefault(name, m.client_id)
    alexa = session.scalar(
        select(OAuthClient).where(OAuthClient.store_id == store.id, OAuthClient.kind == "alexa")
    )
    products = session.scalars(
        select(Product).where(Product.store_id == store.id).order_by(Product.id)
    )
    api = _api_client(session, store)
    merchant = session.scalar(select(Account).where(Account.email == MERCHANT_EMAIL))
    shopper = session.scalar(select(Account).where(Account.email == SHOPPER_EMAIL))
    return SeedResult(
        store_id=store.id,
        merchant={"email": merchant.email if merchant else None, "password": merchant_password},
        shopper={"email": shopper.email if shopper else None, "password": shopper_password},
        products=[
            {"sku": p.sku, "name": p.name, "price_minor": p.price_minor, "currency": p.currency}
            for p in products
        ],
        clients={
            "button": models.get("button"),
            "appliance": models.get("appliance"),
            "button_oscore": models.get("button_oscore"),
            "appliance_oscore": models.get("appliance_oscore"),
            "printer": models.get("printer"),
            "alexa": {
                "client_id": alexa.client_id if alexa else None,
                "client_secret": alexa_secret,
                "redirect_uri": ALEXA_REDIRECT,
            },
            "merchant_api": {
                "client_id": api.client_id if api else None,
                "client_secret": api_secret,
            },
        },
        created=created,
    )
