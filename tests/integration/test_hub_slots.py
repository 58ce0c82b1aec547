"""Slots and faults over a real CoAP socket: one order for several inks, a fault once."""

from __future__ import annotations

import asyncio

from aiocoap import Context
from aiocoap.numbers.codes import Code
from sqlalchemy import select

from device_hub.simulate import DeviceOptions, SimulatedDevice, Tokens
from orders.store.db import Database
from orders.store.model import DeviceFault, Order, OrderEvent, OrderLine
from tests.e2e.hub_fixtures import CoapClient, client, hub
from tests.factories import count, db_snapshot
from tests.slot_fixtures import build_faulty_machine, build_printer, inks

__all__ = ["client", "hub"]  # fixtures used by name


def test_low_inks_over_coap_are_one_order_with_their_lines(
    db: Database, client: CoapClient
) -> None:
    """CBOR SenML with CBOR labels: two low inks, 2.04 ordered, the order lists both lines."""
    printer = build_printer(db)
    pack = [{0: "yellow_ink", 1: "%", 2: 4}, {0: "black_ink", 1: "%", 2: 3}, {0: "cyan_ink", 2: 80}]
    reply = client.post("/telemetry", {"at": printer.token, "senml": pack})
    assert reply.code == Code.CHANGED and reply.body["action"] == "ordered"
    assert reply.body["order"]["lines"] == [
        {"sku": "INK-BLACK", "quantity": 1},
        {"sku": "INK-YELLOW", "quantity": 1},
    ]
    again = client.post("/telemetry", {"at": printer.token, "senml": inks(yellow=2, black=1)},
                        json_format=True)  # fmt: skip
    assert again.body == {"accepted": 2, "action": "none"}
    assert count(db, Order) == 1


def test_a_fault_over_coap_is_announced_once(db: Database, client: CoapClient) -> None:
    """descale (vb, CBOR label 4) twice: one device.fault and one suggested order."""
    devices = build_faulty_machine(db, maintenance_orders=True)
    first = client.post(
        "/telemetry", {"at": devices.appliance_token, "senml": [{0: "descale", 4: True}]}
    )
    assert first.code == Code.CHANGED and first.body["action"] == "needs_approval"
    assert first.body["order"]["sku"] == "DESCALER"
    second = client.post(
        "/telemetry", {"at": devices.appliance_token, "senml": [{0: "descale", 4: True}]}
    )
    assert second.body == {"accepted": 1, "action": "none"}
    with db.read() as session:
        kinds = list(
            session.scalars(select(OrderEvent.type).where(OrderEvent.type.like("device.fault%")))
        )
    assert kinds == ["device.fault"]
    assert count(db, DeviceFault) == 1


def test_a_wrongly_typed_condition_over_coap_is_4_00_unchanged(
    db: Database, client: CoapClient
) -> None:
    """A string for the descale flag: 4.00 bad_senml, nothing stored."""
    devices = build_faulty_machine(db)
    before = db_snapshot(db)
    reply = client.post(
        "/telemetry", {"at": devices.appliance_token, "senml": [{0: "descale", 3: "x"}]}
    )
    assert reply.code == Code.BAD_REQUEST and reply.body["error"] == "bad_senml"
    assert db_snapshot(db) == before


def test_the_simulator_reports_several_slots_and_a_fault(db: Database, client: CoapClient) -> None:
    """`simulate appliance --slot … --fault descale`: one pack per report; inks ordered together."""
    printer = build_printer(db)
    lines: list[str] = []
    device = SimulatedDevice(
        DeviceOptions(kind="appliance", client_id="x", serial="PR-1", hub=client.base,
                      slots=("cyan_ink", "magenta_ink"), unit="%", start_level=10, reports=1,
                      pause=0),
        out=lines.append,
    )  # fmt: skip

    async def scenario(context: Context) -> None:
        device.context = context
        device.tokens = Tokens(printer.token, "", asyncio.get_running_loop().time() + 3600)
        await device.report()

    client.run(scenario)
    assert lines and lines[0].startswith("level 10 %: 2.04 ordered"), lines
    assert sorted(sku for sku, _ in _order_lines(db)) == ["INK-CYAN", "INK-MAGENTA"]


def _order_lines(db: Database) -> list[tuple[str, int]]:
    with db.read() as session:
        return [(line.sku, line.quantity) for line in session.scalars(select(OrderLine))]
