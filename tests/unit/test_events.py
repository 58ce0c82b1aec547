"""NOTIFY payloads: the changed orders' ids, comma-joined, within PostgreSQL's size limit."""

from __future__ import annotations

from orders.store.model import new_order_id
from orders.store.outbox import notified_order_ids, notify_payloads


def test_a_batch_of_changes_is_one_payload_naming_each_order_once() -> None:
    ids = [new_order_id() for _ in range(5)]
    payloads = notify_payloads([*ids, ids[0]])
    assert len(payloads) == 1
    assert notified_order_ids(payloads[0]) == ids


def test_a_large_batch_splits_below_postgresqls_8000_byte_limit() -> None:
    ids = [new_order_id() for _ in range(1000)]
    payloads = notify_payloads(ids)
    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [i for payload in payloads for i in notified_order_ids(payload)] == ids


def test_a_single_order_payload_is_its_id() -> None:
    order_id = new_order_id()
    assert notify_payloads([order_id]) == [order_id]
    assert notified_order_ids(order_id) == [order_id]
    assert notify_payloads([]) == []
