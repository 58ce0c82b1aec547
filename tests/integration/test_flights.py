"""Statements sent together (orders/store/flights.py): the same results as one at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError

from orders.services.presses import press
from orders.store.db import Database, utcnow
from orders.store.flights import _compiled_write, insert_rows, read_rows
from orders.store.model import OrderEvent, Press, Shopper
from orders.store.sql import in_list, in_select
from tests.conftest import Backend
from tests.factories import build_world, count, past_orders_analyzed

_SHOPPERS = select(Shopper.id, Shopper.name).where(in_list(Shopper.id, "ids")).order_by(Shopper.id)


def _locked_elsewhere(db: Database, shopper_id: int) -> bool:
    """Whether another connection finds the shopper's row locked (without waiting)."""
    with db.engine.connect() as other:
        try:
            other.execute(
                text("SELECT id FROM shoppers WHERE id = :id FOR UPDATE NOWAIT"), {"id": shopper_id}
            )
        except OperationalError:
            return True
        finally:
            other.rollback()
    return False


def _shoppers(db: Database, n: int) -> list[int]:
    with db.write() as session:
        session.add_all(Shopper(name=f"s{i}", created_at=utcnow()) for i in range(n))
    with db.read() as session:
        return list(session.scalars(select(Shopper.id).order_by(Shopper.id)))


def test_in_list_is_one_statement_text_on_postgresql_and_expanding_in_elsewhere() -> None:
    """PostgreSQL gets `= ANY(array)` (one text for every length); SQLite expanding IN."""
    on_postgresql = str(_SHOPPERS.compile(dialect=postgresql.psycopg.dialect()))
    on_sqlite = str(_SHOPPERS.compile(dialect=sqlite.dialect()))
    assert "shoppers.id = ANY (%(ids)s::INTEGER[])" in on_postgresql
    assert "shoppers.id IN (__[POSTCOMPILE_ids])" in on_sqlite
    assert "= 1" not in on_sqlite  # a predicate, not a boolean compared with 1


@pytest.mark.parametrize("length", [1, 3, 40])
def test_in_list_finds_exactly_the_listed_rows(db: Database, length: int) -> None:
    """Any list length, read one at a time or in a flight, finds the same rows."""
    ids = _shoppers(db, 50)
    wanted = ids[5 : 5 + length] + [10**9]  # one id that matches nothing
    with db.engine.connect() as conn:
        direct = [row.id for row in conn.execute(_SHOPPERS, {"ids": wanted})]
        (flown,) = read_rows(conn, [(_SHOPPERS, {"ids": wanted})])
    assert direct == [row.id for row in flown] == ids[5 : 5 + length]
    assert [row.name for row in flown] == [f"s{i}" for i in range(5, 5 + length)]
    with db.engine.connect() as conn:  # any sequence will do, as through SQLAlchemy
        (from_tuple,) = read_rows(conn, [(_SHOPPERS, {"ids": tuple(wanted)})])
    assert [row.id for row in from_tuple] == ids[5 : 5 + length]


def test_insert_rows_stores_what_an_executemany_would(db: Database) -> None:
    """Texts, None, JSON and times in another zone come back as given (times in UTC)."""
    world = build_world(db)
    order = press(db, world.device_id, 1).order
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2026, 12, 1, 21, 30, tzinfo=tokyo)
    presses = [
        {"device_id": world.device_id, "link_id": world.link_id,
         "boot": boot, "seq": seq, "result": "duplicate",
         "order_id": order_id, "created_at": at}
        for boot, seq, order_id in [("b1", 5, order.id), ("b2", 6, None), ('q"uo\\te,{}', 7, None)]
    ]  # fmt: skip
    events = [
        {"order_id": order.id, "store_id": world.store_id, "type": "order.noted",
         "status": "placed", "data": {"n": n, "text": 'a "b", {c}'}, "created_at": at}
        for n in range(2)
    ]  # fmt: skip
    dialect = db.dialect
    db.run_decided(
        lambda conn: (
            None,
            [
                insert_rows(dialect, Press.__table__, presses),
                insert_rows(dialect, OrderEvent.__table__, events),
            ],
        )  # fmt: skip
    )
    with db.read() as session:
        stored = session.execute(
            select(Press.boot, Press.seq, Press.order_id, Press.created_at)
            .where(Press.seq >= 5)
            .order_by(Press.seq)
        ).all()
        data = list(
            session.scalars(
                select(OrderEvent.data)
                .where(OrderEvent.type == "order.noted")
                .order_by(OrderEvent.id)
            )
        )
    assert [(b, s, o) for b, s, o, _ in stored] == [
        ("b1", 5, order.id), ("b2", 6, None), ('q"uo\\te,{}', 7, None)
    ]  # fmt: skip
    assert all(t == at and t.utcoffset() == timedelta(0) for *_, t in stored)
    assert data == [{"n": 0, "text": 'a "b", {c}'}, {"n": 1, "text": 'a "b", {c}'}]


def test_insert_rows_refuses_rows_that_leave_a_python_default_unnamed() -> None:
    """INSERT … SELECT cannot run Python-side defaults per row: say so, do not insert NULLs."""
    row = {"device_id": 1, "seq": 1, "result": "placed", "order_id": None}  # no boot, no time
    with pytest.raises(ValueError, match="boot, created_at"):
        insert_rows("postgresql", Press.__table__, [row])


def test_a_failed_write_flight_commits_nothing_and_the_connection_serves_again(
    db: Database,
) -> None:
    """A unique key refused mid-flight: IntegrityError, none of the flight's rows, and the
    next transaction on the pool works."""
    world = build_world(db)
    row = {"device_id": world.device_id, "link_id": world.link_id,
           "boot": "", "seq": 9, "result": "placed",
           "order_id": None, "created_at": utcnow()}  # fmt: skip
    dialect = db.dialect
    before = count(db, Press)
    for _ in range(3):  # more than once: every pooled connection must come back clean
        with pytest.raises(IntegrityError):
            db.run_decided(lambda conn: (None, [insert_rows(dialect, Press.__table__, [row, row])]))
    assert count(db, Press) == before
    db.run_decided(lambda conn: (None, [insert_rows(dialect, Press.__table__, [row])]))
    assert count(db, Press) == before + 1


def test_a_transaction_that_only_reads_or_only_writes_ends_cleanly(db: Database) -> None:
    """Nothing read and nothing written; or written without a read first (BEGIN then goes
    with the writes)."""
    world = build_world(db)
    assert db.run_decided(lambda conn: ("nothing", [])) == "nothing"
    row = {"device_id": world.device_id, "link_id": world.link_id,
           "boot": "w", "seq": 1, "result": "placed",
           "order_id": None, "created_at": utcnow()}  # fmt: skip
    dialect = db.dialect
    db.run_decided(lambda conn: (None, [insert_rows(dialect, Press.__table__, [row])]))
    with db.read() as session:
        assert session.scalar(select(Press.boot).where(Press.boot == "w")) == "w"


@pytest.mark.postgres
def test_pipelined_reads_give_utc_times_whatever_the_session_time_zone(
    postgresql_backend: Backend,
) -> None:
    """psycopg returns times in the session's zone; the rows carry them in UTC like
    SQLAlchemy's own (the rows reach devices as `updated`)."""
    db = Database(postgresql_backend.engine)
    try:
        _shoppers(db, 1)
        at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        with db.write() as session:
            session.execute(Shopper.__table__.update().values(deleted_at=at))
        query = select(Shopper.deleted_at).where(in_list(Shopper.id, "ids"))
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'Asia/Tokyo'")
            ids = [row[0] for row in conn.execute(select(Shopper.id))]
            ((row,),) = read_rows(conn, [(query, {"ids": ids})])
            conn.exec_driver_sql("RESET TIME ZONE")
        assert row.deleted_at == at and row.deleted_at.tzinfo is UTC
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_a_read_after_a_locking_read_in_one_flight_sees_what_committed_during_the_wait(
    postgresql_backend: Backend,
) -> None:
    """The press batch relies on it: its seen/open read travels with the locking read, yet
    runs after the lock is granted, so it sees the other transaction's committed press."""
    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        holder = db.engine.connect()
        holder.execute(
            select(Shopper.id).where(Shopper.id == world.shopper_id).with_for_update()
        ).all()
        holder.execute(
            Press.__table__.insert().values(
                device_id=world.device_id, boot="", seq=77, result="placed", created_at=utcnow()
            )
        )
        timer = threading.Timer(0.3, holder.commit)
        timer.start()
        lock = select(Shopper.id).where(in_list(Shopper.id, "ids")).with_for_update()
        seen = select(Press.seq).where(in_list(Press.device_id, "devices"))
        try:
            with db.engine.connect() as conn:
                locked, presses = read_rows(
                    conn,
                    [(lock, {"ids": [world.shopper_id]}), (seen, {"devices": [world.device_id]})],
                )
                conn.rollback()
        finally:
            timer.join()
            holder.close()
        assert [row.id for row in locked] == [world.shopper_id]
        assert [row.seq for row in presses] == [77]
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_an_error_while_deciding_leaves_no_lock_behind(postgresql_backend: Backend) -> None:
    """The deferred-BEGIN transaction is rolled back when deciding fails after locking."""
    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        lock = select(Shopper.id).where(in_list(Shopper.id, "ids")).with_for_update()

        def decide_then_fail(conn: object) -> tuple[None, list[object]]:
            read_rows(conn, [(lock, {"ids": [world.shopper_id]})])  # type: ignore[arg-type]
            raise RuntimeError("a bug while deciding")

        discarded: list[bool] = []

        def on_close(*_: object) -> None:
            discarded.append(True)

        event.listen(db.engine, "close", on_close)
        try:
            with pytest.raises(RuntimeError):
                db.run_decided(decide_then_fail)  # type: ignore[arg-type]
        finally:
            event.remove(db.engine, "close", on_close)
        assert discarded == []  # rolled back and pooled again, not dropped
        with db.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '200ms'")
            found = other.execute(
                text("SELECT id FROM shoppers WHERE id = :id FOR UPDATE"), {"id": world.shopper_id}
            ).all()
            other.rollback()
        assert [row[0] for row in found] == [world.shopper_id]
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_a_lock_taken_in_a_read_flight_is_held_until_the_commit(
    postgresql_backend: Backend,
) -> None:
    """The read flight opens the transaction (BEGIN travels with it): its row lock lasts
    until the writes commit, so another process cannot decide on the same shopper between."""
    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        lock = select(Shopper.id).where(in_list(Shopper.id, "ids")).with_for_update()
        blocked: list[bool] = []

        def decide(conn: object) -> tuple[None, list[object]]:
            read_rows(conn, [(lock, {"ids": [world.shopper_id]})])  # type: ignore[arg-type]
            blocked.append(_locked_elsewhere(db, world.shopper_id))
            return None, []

        db.run_decided(decide)  # type: ignore[arg-type]
        assert blocked == [True]
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_a_plain_statement_before_any_flight_still_runs_inside_the_transaction(
    postgresql_backend: Backend,
) -> None:
    """BEGIN waits for the first flight; a statement sent the ordinary way first must not
    run in autocommit, or its lock would be gone before the commit."""
    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        lock = select(Shopper.id).where(Shopper.id == world.shopper_id).with_for_update()
        blocked: list[bool] = []

        def decide(conn: Any) -> tuple[None, list[object]]:
            conn.execute(lock).all()
            blocked.append(_locked_elsewhere(db, world.shopper_id))
            return None, []

        db.run_decided(decide)  # type: ignore[arg-type]
        assert blocked == [True]
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_a_write_transaction_plans_generically_and_only_inside_itself(
    postgresql_backend: Backend,
) -> None:
    """The flights' transaction runs with plan_cache_mode = force_generic_plan (no planning
    afresh at every batch); it is SET LOCAL, so the pooled connection leaves it behind."""
    db = Database(postgresql_backend.engine)
    setting = select(func.current_setting("plan_cache_mode"))
    inside: list[str] = []

    def decide(conn: Any) -> tuple[None, list[object]]:
        ((row,),) = read_rows(conn, [(setting, {})])
        inside.append(row[0])
        return None, []

    db.run_decided(decide)  # type: ignore[arg-type]
    assert inside == ["force_generic_plan"]
    with db.engine.connect() as conn:  # the pool has one connection in this test
        assert conn.scalar(setting) == "auto"


@pytest.mark.postgres
def test_a_write_that_needs_python_defaults_goes_through_sqlalchemy(
    postgresql_backend: Backend,
) -> None:
    """A row that leaves `boot` and `created_at` to their Python defaults cannot be sent
    straight to the driver; it is executed by SQLAlchemy, which fills them in."""
    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db)
        row = {"device_id": world.device_id, "seq": 3, "result": "placed", "order_id": None}
        statement = insert(Press)
        assert _compiled_write(statement, postgresql_backend.engine.dialect, tuple(row)) is None
        db.run_decided(lambda conn: (None, [(statement, [row])]))
        with db.read() as session:
            stored = session.execute(select(Press.boot, Press.created_at)).one()
        assert stored.boot == "" and stored.created_at is not None
    finally:
        postgresql_backend.clean()


@pytest.mark.postgres
def test_writes_sent_to_the_driver_are_still_seen_by_cursor_event_listeners(
    postgresql_backend: Backend,
) -> None:
    """Instrumentation listening to SQLAlchemy's cursor events sees every write of a
    flight, before and after it runs, whichever way it was sent."""
    db = Database(postgresql_backend.engine)
    seen: list[tuple[str, str]] = []

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(("before", statement.split(" (")[0]))

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(("after", statement.split(" (")[0]))

    try:
        world = build_world(db)
        row = {"device_id": world.device_id, "link_id": world.link_id,
           "boot": "", "seq": 4, "result": "placed",
               "order_id": None, "created_at": utcnow()}  # fmt: skip
        dialect = db.dialect
        write = insert_rows(dialect, Press.__table__, [row])
        assert _compiled_write(write[0], postgresql_backend.engine.dialect, ("device_id",))
        event.listen(db.engine, "before_cursor_execute", before)
        event.listen(db.engine, "after_cursor_execute", after)
        db.run_decided(lambda conn: (None, [write]))
        assert seen == [("before", "INSERT INTO presses"), ("after", "INSERT INTO presses")]
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
        postgresql_backend.clean()


def test_in_select_is_an_array_of_the_subquery_on_postgresql_and_plain_in_elsewhere() -> None:
    """PostgreSQL: `= ANY(ARRAY(SELECT …))`, one subquery run and an index condition;
    SQLite: plain `IN (SELECT …)`."""
    some = select(Shopper.id).where(Shopper.name.like("s1%"))
    query = select(Shopper.name).where(in_select(Shopper.id, some))
    on_postgresql = str(query.compile(dialect=postgresql.psycopg.dialect()))
    on_sqlite = str(query.compile(dialect=sqlite.dialect()))
    assert "WHERE shoppers.id = ANY(ARRAY(SELECT shoppers.id" in on_postgresql
    assert "WHERE shoppers.id IN (SELECT shoppers.id" in on_sqlite


def test_in_select_finds_exactly_the_selected_rows(db: Database) -> None:
    """Read one at a time or in a flight, the same rows; none when the subquery has none."""
    ids = _shoppers(db, 30)
    some = select(Shopper.id).where(in_list(Shopper.id, "ids"))
    query = select(Shopper.id).where(in_select(Shopper.id, some)).order_by(Shopper.id)
    for wanted in ([ids[3], ids[7], 10**9], []):
        with db.engine.connect() as conn:
            direct = [row.id for row in conn.execute(query, {"ids": wanted})]
            (flown,) = read_rows(conn, [(query, {"ids": wanted})])
        assert direct == [row.id for row in flown] == [i for i in ids if i in wanted]


@pytest.mark.postgres
def test_the_open_order_lookup_stays_an_index_lookup_as_open_orders_grow(
    postgresql_backend: Backend,
) -> None:
    """The press batch's seen/open read, planned generically while no order is open, still
    finds a device's open orders through the index once many are open (a semi-join plan
    made then scanned every open order, re-running the subquery for each)."""
    from orders.services.presses import _GIVEN_DEVICES, _seen_and_open

    db = Database(postgresql_backend.engine)
    try:
        world = build_world(db, stock=1000)
        past_orders_analyzed(db, world, 3000, of_the_device=True)
        statement = _seen_and_open(_GIVEN_DEVICES)
        compiled = statement.compile(dialect=postgresql_backend.engine.dialect)
        sql = compiled.string % {"given": "$1", "seqs": "$2", "boots": "$3"}
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE seen_open(integer[], bigint[], text[]) AS {sql}")
            press(db, world.device_id, 1)  # one open order now, planned for none
            plan = conn.exec_driver_sql(
                "EXPLAIN (FORMAT JSON) EXECUTE seen_open("
                f"'{{{world.device_id}}}', '{{1}}', '{{\"\"}}')"
            ).scalar()
        scans = list(_nodes(plan[0]["Plan"]))
        open_orders = [n for n in scans if n.get("Alias") == "orders_1"]  # the 'open' branch
        assert open_orders
        assert all("device_id = ANY" in n.get("Index Cond", "") for n in open_orders)
        assert all("device_id" not in n.get("Join Filter", "") for n in scans)
    finally:
        postgresql_backend.clean()


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
