"""A linked four-ink printer and a coffee machine that reports faults, for slot and
maintenance tests (on top of `build_devices`' world)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from orders.domain.maintenance import ConditionSpec
from orders.services.catalog import SlotSpec, add_product, condition_of, create_device_model
from orders.services.devices import LinkRules, SlotRule, link_device, register_device
from orders.store.db import Database
from orders.store.model import DeviceModel, Shopper, Store
from tests.e2e.hub_fixtures import Devices, build_devices, device_token

INKS = ("cyan", "magenta", "yellow", "black")
PRINTER_SLOTS = [SlotSpec(f"{ink}_ink", "%", 100, f"INK-{ink.upper()}", 100) for ink in INKS]
CONDITIONS = [
    ConditionSpec("descale", "flag", "Descale the machine.", sku="DESCALER"),
    ConditionSpec("filter_life", "percent", "Replace the water filter.", threshold=10),
    ConditionSpec("error", "code", "The machine reported an error."),
    ConditionSpec("cycles", "counter", "Descaling is due.", threshold=300, sku="DESCALER"),
]


@dataclass(frozen=True)
class Printer:
    """The world, and a printer linked to its shopper with a device token."""

    devices: Devices
    printer_id: int
    link_id: int
    token: str


def build_printer(db: Database, slot_rules: tuple[SlotRule, ...] = (), **world: object) -> Printer:
    """The world plus a linked printer (four ink slots, each its own cartridge)."""
    devices = build_devices(db, **world)  # type: ignore[arg-type]
    with db.write() as session:
        store = session.get(Store, devices.world.store_id)
        shopper = session.get(Shopper, devices.world.shopper_id)
        assert store is not None and shopper is not None
        for ink in INKS:
            add_product(session, store, sku=f"INK-{ink.upper()}", name=f"{ink} ink",
                        price_minor=2000, stock=50)  # fmt: skip
        model = create_device_model(
            session, store, name="Printer", kind="appliance", slots=PRINTER_SLOTS
        )
        device = register_device(session, model, "PR-1")
        link = link_device(session, device, shopper, LinkRules(slots=slot_rules))
        printer_id, link_id = device.id, link.id
    token = device_token(db, devices.world, printer_id, link_id)
    return Printer(devices, printer_id, link_id, token)


def build_faulty_machine(db: Database, *, maintenance_orders: bool = False) -> Devices:
    """The world whose coffee machine also reports descale, filter life, errors and cycles."""
    rules = LinkRules(reorder_point=10, maintenance_orders=maintenance_orders)
    devices = build_devices(db, appliance_rules=rules)
    with db.write() as session:
        store = session.get(Store, devices.world.store_id)
        assert store is not None
        add_product(session, store, sku="DESCALER", name="Descaler", price_minor=900, stock=20)
        model = session.scalars(
            select(DeviceModel).where(DeviceModel.client_id == devices.world.appliance_client_id)
        ).one()
        for spec in CONDITIONS:
            model.conditions.append(condition_of(session, store, spec))
    return devices


def inks(**levels: float) -> list[dict[str, object]]:
    """A SenML pack of ink levels in %, e.g. inks(cyan=5, black=60)."""
    return [{"n": f"{ink}_ink", "u": "%", "v": level} for ink, level in levels.items()]
