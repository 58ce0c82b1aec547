"""Multi-slot devices: a rule per slot, one order refilling every slot that needs it."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from sqlalchemy import select

from orders.services.devices import SlotRule
from orders.services.telemetry import record_telemetry
from orders.store.db import Database
from orders.store.model import Order, OrderLine
from tests.api_helpers import call, merchant_token
from tests.factories import count, db_snapshot
from tests.slot_fixtures import build_printer, inks

TELEMETRY = "/api/v1/device/telemetry"
SENML = "application/senml+json"


def _telemetry(app: Flask, token: str, pack: list[dict[str, object]]) -> tuple[int, Any]:
    response = app.test_client().post(
        TELEMETRY, data=json.dumps(pack), headers={"Authorization": f"Bearer {token}"},
        content_type=SENML,
    )  # fmt: skip
    return response.status_code, response.get_json()


def _lines(db: Database) -> list[tuple[str, int]]:
    with db.read() as session:
        return list(
            session.execute(select(OrderLine.sku, OrderLine.quantity).order_by(OrderLine.sku))
        )


def test_three_low_inks_are_one_order_of_three_lines(app: Flask, db: Database) -> None:
    """Cyan, magenta and yellow low, black fine: one order, one line per low ink."""
    printer = build_printer(db)
    status, body = _telemetry(app, printer.token, inks(cyan=5, magenta=8, yellow=12, black=60))
    assert (status, body["action"]) == (200, "ordered")
    assert body["order"]["lines"] == [
        {"sku": "INK-CYAN", "quantity": 1},
        {"sku": "INK-MAGENTA", "quantity": 1},
        {"sku": "INK-YELLOW", "quantity": 1},
    ]
    assert body["order"]["total_minor"] == 6000
    assert count(db, Order) == 1
    assert _lines(db) == [("INK-CYAN", 1), ("INK-MAGENTA", 1), ("INK-YELLOW", 1)]


def test_slots_held_by_an_open_order_are_not_ordered_again(app: Flask, db: Database) -> None:
    """Cyan on the way: still low, no new cyan; black falls low: an order for black alone."""
    printer = build_printer(db)
    first = _telemetry(app, printer.token, inks(cyan=5, black=60))[1]
    assert first["order"]["sku"] == "INK-CYAN" and "lines" not in first["order"]
    again = _telemetry(app, printer.token, inks(cyan=3, black=60))[1]
    assert again == {"accepted": 2, "action": "none"}
    black = _telemetry(app, printer.token, inks(cyan=2, black=10))[1]
    assert black["action"] == "ordered" and black["order"]["sku"] == "INK-BLACK"
    assert "lines" not in black["order"]
    assert count(db, Order) == 2


def test_each_slot_follows_its_own_rule(db: Database) -> None:
    """Yellow off, magenta at 50 % in twos, cyan at the default fifth: only magenta orders."""
    printer = build_printer(db, slot_rules=(
        SlotRule("yellow_ink", "off"),
        SlotRule("magenta_ink", "threshold", reorder_point=50, quantity=2),
    ))  # fmt: skip
    result = record_telemetry(db, printer.printer_id, inks(cyan=30, magenta=45, yellow=0, black=90))
    assert result.action == "ordered" and result.order is not None
    assert [(line.sku, line.quantity) for line in result.order.lines] == [("INK-MAGENTA", 2)]


def test_a_level_reported_as_a_boolean_is_refused_unchanged(app: Flask, db: Database) -> None:
    """A slot takes `v`: `vb` on an ink slot is 400 bad_senml and nothing is stored."""
    printer = build_printer(db)
    before = db_snapshot(db)
    status, body = _telemetry(app, printer.token, [{"n": "cyan_ink", "vb": True}])
    assert (status, body["error"]) == (400, "bad_senml")
    assert db_snapshot(db) == before


def test_the_merchant_api_shows_every_line(app: Flask, db: Database) -> None:
    """GET /api/v1/orders/{id} with a merchant token: the multi-slot order with its lines."""
    printer = build_printer(db)
    order_id = _telemetry(app, printer.token, inks(cyan=1, black=1))[1]["order"]["id"]
    token = merchant_token(db, printer.devices.world.store_id, "orders:read")
    order = call(app, "GET", f"/orders/{order_id}", token).get_json()
    assert [line["sku"] for line in order["lines"]] == ["INK-BLACK", "INK-CYAN"]
    assert order["total_minor"] == 4000 and order["channel"] == "appliance"
