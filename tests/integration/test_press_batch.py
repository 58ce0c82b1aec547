"""Group-committed presses: one transaction, and each press still all-or-nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from orders.domain.errors import OrderRefused
from orders.services.devices import LinkRules, link_device, register_device
from orders.services.presses import _GIVEN_DEVICES, PressRequest, _seen_and_open, press, press_batch
from orders.store.db import Database, utcnow
from orders.store.flights import read_rows
from orders.store.model import Device, DeviceModel, Order, OrderEvent, Press, Product, Shopper
from orders.store.outbox import ORDER_EVENTS_CHANNEL, notified_order_ids
from tests.conftest import Backend
from tests.factories import build_world, count, past_orders_analyzed, shopper_with_address


def _second_device(db: Database, *, paused: bool) -> int:
    with db.write() as session:
        model = session.scalars(select(DeviceModel).where(DeviceModel.kind == "button")).one()
        shopper = shopper_with_address(session, name="Bea")
        device = register_device(session, model, "SN-2")
        link_device(session, device, shopper, LinkRules(product_sku="PODS", paused=paused))
        return device.id


def test_a_batch_places_each_press_and_answers_in_order(db: Database) -> None:
    """Presses of two devices and a repeat share one commit; answers keep request order."""
    world = build_world(db, stock=10)
    other = _second_device(db, paused=False)
    answers = press_batch(
        db,
        [
            PressRequest(world.device_id, 1),
            PressRequest(other, 1),
            PressRequest(world.device_id, 2),
            PressRequest(world.device_id, 1),
        ],
    )
    assert [getattr(a, "outcome", None) for a in answers] == [
        "placed",
        "placed",
        "in_progress",
        "duplicate",
    ]
    assert count(db, Order) == 2
    assert count(db, Press) == 3


def test_a_refused_press_in_a_batch_changes_nothing_of_its_own(db: Database) -> None:
    """A paused device's press is refused alone; its neighbours still commit."""
    world = build_world(db, stock=10)
    paused = _second_device(db, paused=True)
    answers = press_batch(db, [PressRequest(paused, 1), PressRequest(world.device_id, 1)])
    assert isinstance(answers[0], OrderRefused) and answers[0].reason == "paused"
    assert getattr(answers[1], "outcome", None) == "placed"
    with db.read() as session:
        assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 9
        assert session.scalars(select(Press.device_id)).all() == [world.device_id]


def test_out_of_stock_in_a_batch_refuses_only_the_press_that_ran_short(db: Database) -> None:
    """With one unit left, the first press takes it and the second is out_of_stock."""
    world = build_world(db, stock=1)
    other = _second_device(db, paused=False)
    answers = press_batch(db, [PressRequest(world.device_id, 1), PressRequest(other, 1)])
    assert getattr(answers[0], "outcome", None) == "placed"
    assert isinstance(answers[1], OrderRefused) and answers[1].reason == "out_of_stock"
    assert count(db, Order) == 1


def _shopper_device(db: Database, shopper_id: int, serial: str, sku: str) -> int:
    with db.write() as session:
        model = session.scalars(select(DeviceModel).where(DeviceModel.kind == "button")).one()
        shopper = session.get(Shopper, shopper_id)
        assert shopper is not None
        device = register_device(session, model, serial)
        link_device(session, device, shopper, LinkRules(product_sku=sku))
        return device.id


def test_a_shoppers_monthly_cap_counts_the_orders_placed_earlier_in_the_batch(
    db: Database,
) -> None:
    """Two devices of one shopper, a cap for one order: the second press is refused alone."""
    world = build_world(db, price_minor=500)
    with db.write() as session:
        shopper = session.get(Shopper, world.shopper_id)
        assert shopper is not None
        shopper.monthly_cap_minor = 700
        # Another product: a second open order of PODS would answer in_progress first.
        model = session.scalars(select(DeviceModel).where(DeviceModel.kind == "button")).one()
        model.products.append(session.scalars(select(Product).where(Product.sku == "AA")).one())
    other = _shopper_device(db, world.shopper_id, "SN-2", "AA")
    answers = press_batch(db, [PressRequest(world.device_id, 1), PressRequest(other, 1)])
    assert getattr(answers[0], "outcome", None) == "placed"
    assert isinstance(answers[1], OrderRefused) and answers[1].reason == "spending_cap"
    with db.read() as session:
        assert session.scalars(select(Press.device_id)).all() == [world.device_id]
        assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 99


def test_refused_presses_record_nothing_so_the_next_press_is_judged_afresh(db: Database) -> None:
    """Out of stock twice in one batch: the first refusal recorded no press and no order,
    so the second press of the device is not `in_progress` but refused on its own."""
    world = build_world(db, stock=0)
    answers = press_batch(db, [PressRequest(world.device_id, 1), PressRequest(world.device_id, 2)])
    assert [getattr(a, "reason", None) for a in answers] == ["out_of_stock", "out_of_stock"]
    assert count(db, Press) == 0 and count(db, Order) == 0


def test_duplicates_inside_one_batch_answer_the_first_presses_order(db: Database) -> None:
    """The same press twice in a batch: placed, then duplicate of that very order."""
    world = build_world(db)
    first, again = press_batch(db, [PressRequest(world.device_id, 7)] * 2)
    assert getattr(first, "outcome", None) == "placed"
    assert getattr(again, "outcome", None) == "duplicate"
    assert getattr(again, "order", None) == getattr(first, "order", None)
    assert count(db, Press) == 1


@pytest.mark.postgres
def test_another_process_taking_the_last_unit_mid_batch_never_oversells(
    postgresql_backend: Backend,
) -> None:
    """The batch read one unit left; another transaction takes it before the batch's stock
    update: the batch runs again, answers out_of_stock, and stock never goes negative."""
    db = Database(postgresql_backend.engine)
    world = build_world(db, stock=1)
    raced: list[bool] = []

    def take_the_last_unit_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "UPDATE products" in statement and not raced:  # the batch's write
            raced.append(True)
            with db.engine.connect() as other:  # a second connection: another process
                other.execute(update(Product).values(stock=Product.stock - 1))
                other.commit()

    event.listen(db.engine, "before_cursor_execute", take_the_last_unit_first)
    try:
        answers = press_batch(db, [PressRequest(world.device_id, 1)])
        assert raced == [True]
        assert isinstance(answers[0], OrderRefused) and answers[0].reason == "out_of_stock"
        with db.read() as session:
            assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 0
        assert count(db, Order) == 0 and count(db, Press) == 0
    finally:
        event.remove(db.engine, "before_cursor_execute", take_the_last_unit_first)
        postgresql_backend.clean()


@pytest.mark.postgres
def test_another_process_recording_the_same_press_mid_batch_makes_it_a_duplicate(
    postgresql_backend: Backend,
) -> None:
    """Another hub records (device, boot, seq) after the batch read but before it wrote:
    the batch's insert hits the unique key, the batch runs again and answers `duplicate`
    with the other hub's order, and no second order or stock is taken."""
    from orders.services.lifecycle import mark_delivered, mark_shipped

    db = Database(postgresql_backend.engine)
    world = build_world(db, stock=10)
    earlier = press(db, world.device_id, 1)
    mark_shipped(db, earlier.order.id, world.store_id)
    mark_delivered(db, earlier.order.id, world.store_id)
    raced: list[bool] = []

    def record_it_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "INSERT INTO orders" in statement and not raced:  # the batch's write
            raced.append(True)
            with db.engine.connect() as other:  # a second connection: another process
                other.execute(
                    insert(Press).values(
                        device_id=world.device_id,
                        link_id=world.link_id,
                        boot="",
                        seq=2,
                        result="placed",
                        order_id=earlier.order.id,
                        created_at=utcnow(),
                    )
                )
                other.commit()

    event.listen(db.engine, "before_cursor_execute", record_it_first)
    try:
        answers = press_batch(db, [PressRequest(world.device_id, 2)])
        assert raced == [True]
        assert getattr(answers[0], "outcome", None) == "duplicate"
        assert getattr(answers[0], "order", None) is not None
        assert answers[0].order.id == earlier.order.id  # type: ignore[union-attr]
        assert count(db, Order) == 1
        with db.read() as session:
            assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 9
    finally:
        event.remove(db.engine, "before_cursor_execute", record_it_first)
        postgresql_backend.clean()


@pytest.mark.parametrize("seq", [2**31, 2**63 - 1])
def test_a_press_counter_beyond_32_bits_is_an_ordinary_press(db: Database, seq: int) -> None:
    """check_press accepts any counter below 2**63: it is recorded, never a database error."""
    world = build_world(db)
    first = press(db, world.device_id, seq)
    again = press(db, world.device_id, seq)
    assert first.outcome == "placed"
    assert again.outcome == "duplicate" and again.order.id == first.order.id


@pytest.mark.postgres
def test_a_links_monthly_spending_is_read_through_the_devices_index(
    postgresql_backend: Backend,
) -> None:
    """Orders have no index on link_id: the batch reads a capped link's month through its
    device's (device_id, created_at) index, not by scanning every order of every store."""
    from orders.services.presses import _SPENT_BY_LINK

    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        past_orders_analyzed(db, world, 3000, of_the_device=False)
        names = {"devices": "$1", "whose": "$2", "since": "$3", "coalesce_2": "0",
                 "status_1": "'cancelled'"}  # fmt: skip
        sql = _SPENT_BY_LINK.compile(dialect=postgresql_backend.engine.dialect).string % names
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE spent(integer[], integer[], timestamptz) AS {sql}")
            plan = "\n".join(
                row[0] for row in conn.exec_driver_sql("EXPLAIN EXECUTE spent('{1}', '{1}', now())")
            )
        assert "Seq Scan on orders" not in plan
        assert "device_id = ANY" in plan
    finally:
        postgresql_backend.clean()


def test_a_batch_reads_only_the_boots_it_asks_about(db: Database) -> None:
    """A device starts again at seq 1 under a new boot (CONTRACT): the batch's read of seen
    presses asks for the batch's boots, so the same seq of earlier boots is never read."""
    world = build_world(db, stock=10)
    for boot in ("b1", "b2", "b3"):
        press_batch(db, [PressRequest(world.device_id, 1, boot)])
    seen_and_open = _seen_and_open(_GIVEN_DEVICES)

    def read(boots: list[str]) -> list[tuple[str, str]]:
        params = {"given": [world.device_id], "seqs": [1], "boots": boots}
        with db.engine.connect() as conn:
            rows = read_rows(conn, [(seen_and_open, params)])[0]
        return sorted((row.kind, row.of_boot) for row in rows)

    # The open order (one line), as the link's and as the household's; no earlier press.
    assert read(["b4"]) == [("held", ""), ("open", "")]
    assert read(["b2", "b4"]) == [("held", ""), ("open", ""), ("seen", "b2")]
    again, fresh = press_batch(
        db, [PressRequest(world.device_id, 1, "b2"), PressRequest(world.device_id, 1, "b4")]
    )
    assert getattr(again, "outcome", None) == "duplicate"
    assert getattr(fresh, "outcome", None) == "in_progress"


def test_a_placing_batch_writes_every_row_it_decided(db: Database, backend: Backend) -> None:
    """Orders, lines, outbox rows, presses, stock and the devices' last sight: written as
    decided on both backends (PostgreSQL: one statement, with the outbox's NOTIFY)."""
    world = build_world(db, stock=10, price_minor=250)
    other = _second_device(db, paused=False)
    now = utcnow()
    listener = _listen(backend)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        answers = press_batch(
            db,
            [
                PressRequest(world.device_id, 1, "b"),
                PressRequest(other, 4),
                PressRequest(world.device_id, 2, "b"),
            ],
            now=now,
        )
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    placed = [getattr(a, "order", None) for a in answers]
    assert [getattr(a, "outcome", None) for a in answers] == ["placed", "placed", "in_progress"]
    assert placed[0] is not None and placed[1] is not None and placed[2] == placed[0]
    ids = {placed[0].id: world.device_id, placed[1].id: other}
    with db.read() as session:
        orders = session.scalars(select(Order).order_by(Order.device_id)).all()
        assert {(o.id, o.device_id) for o in orders} == set(ids.items())
        for order in orders:
            assert (order.status, order.channel, order.total_minor) == ("placed", "button", 250)
            assert order.idempotency_key is not None and order.created_at == now
            assert [(line.sku, line.quantity, line.line_total_minor) for line in order.lines] == [
                ("PODS", 1, 250)
            ]
        # Order events only: linking the devices wrote device.linked rows too.
        events = session.scalars(
            select(OrderEvent).where(OrderEvent.order_id.is_not(None)).order_by(OrderEvent.id)
        ).all()
        assert sorted((e.order_id, e.type, e.status) for e in events) == sorted(
            (order_id, "order.created", "placed") for order_id in ids
        )
        assert all(e.data["device_id"] == ids[e.order_id] for e in events)
        presses = session.execute(select(Press.device_id, Press.boot, Press.seq, Press.result))
        assert sorted(presses) == sorted(
            [(world.device_id, "b", 1, "placed"), (other, "", 4, "placed"),
             (world.device_id, "b", 2, "in_progress")]
        )  # fmt: skip
        assert session.scalar(select(Product.stock).where(Product.sku == "PODS")) == 8
        last_seen = session.scalars(select(Device.last_seen_at).where(Device.id.in_(ids.values())))
        assert list(last_seen) == [now, now]
    if listener is not None:
        # The channel is database-wide: other runs' notifications (other orders) are skipped.
        ours = []
        for note in listener.notifies(timeout=5):
            named = set(notified_order_ids(note.payload))
            if named & set(ids):
                ours.append(named)
                break
        listener.close()
        assert ours == [set(ids)]
        # Every row of the batch in one statement (pipelined reads fire no cursor events).
        assert len(statements) == 1 and statements[0].startswith("WITH")


def _listen(backend: Backend) -> Any:
    """PostgreSQL: a connection of its own that LISTENs on the outbox channel, else None."""
    if backend.name != "postgresql":
        return None
    import psycopg

    listener = psycopg.connect(backend.url.replace("+psycopg", ""), autocommit=True)
    listener.execute(f"LISTEN {ORDER_EVENTS_CHANNEL}")
    return listener
