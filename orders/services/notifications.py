"""The shopper's notices: raised from outbox events (by the worker, as it publishes them) or
by the change itself, listed with read/unread, and the kinds the shopper wants by e-mail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from orders.domain.errors import InvalidRequest, NotFound
from orders.domain.notices import NOTICE_TEXT, ORDER_NOTICES, NoticeText, email_kinds, text_of
from orders.domain.webhooks import webhook_type
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, DeviceModel, Notification, Order, Shopper
from orders.store.sql import in_list

LIST_LIMIT = 50


@dataclass(frozen=True)
class NoticeView:
    """A notice as the list shows it."""

    id: int
    kind: str
    text: NoticeText
    order_id: str | None
    device_id: int | None
    created_at: datetime
    read: bool
    data: dict[str, Any]


def raise_notice(
    session: Session,
    shopper_id: int,
    kind: str,
    data: dict[str, Any],
    now: datetime,
    *,
    order_id: str | None = None,
    device_id: int | None = None,
    event_id: int | None = None,
) -> None:
    """One notice for a shopper, in the caller's transaction; queued for e-mail when the
    shopper wants this kind by e-mail and has an address."""
    shopper = session.get(Shopper, shopper_id)
    if shopper is None or shopper.deleted_at is not None:
        return
    by_email = shopper.email is not None and kind in email_kinds(shopper.email_notices)
    session.add(
        Notification(
            shopper_id=shopper_id,
            kind=kind,
            event_id=event_id,
            order_id=order_id,
            device_id=device_id,
            data=data,
            created_at=now,
            email_status="pending" if by_email else "none",
            next_send_at=now if by_email else None,
        )
    )


def notices_from_events(session: Session, events: Sequence[Any], now: datetime) -> int:
    """The notices a batch of outbox rows gives (id, store_id, order_id, type, status, data);
    called once per row, in the transaction that publishes it. Returns how many."""
    wanted: list[tuple[Any, str]] = []
    for event in events:
        kind = webhook_type(event.type, event.status)
        if kind in ORDER_NOTICES and event.order_id is not None:
            wanted.append((event, ORDER_NOTICES[kind]))
        elif kind == "supply.low":
            wanted.append((event, "supply_low"))
    if not wanted:
        return 0
    orders = _orders(session, {e.order_id for e, _ in wanted if e.order_id is not None})
    labels = _device_labels(session, _device_ids(wanted, orders))
    # Loaded once for the batch: raise_notice then finds each shopper without a query.
    owners = sorted({o.shopper_id for o in orders.values() if o.shopper_id is not None})
    if owners:
        list(session.scalars(select(Shopper).where(in_list(Shopper.id, "ids")), {"ids": owners}))
    raised = 0
    for event, notice in wanted:
        if notice == "supply_low":
            target = _alert_only_owner(session, (event.data or {}).get("device_id"))
            if target is None:
                continue
            data = {**_supply_data(event.data or {}), "device": labels.get(target[1])}
            raise_notice(session, target[0], notice, data, now,
                         device_id=target[1], event_id=event.id)  # fmt: skip
            raised += 1
            continue
        order = orders.get(event.order_id)
        if order is None or order.shopper_id is None:
            continue
        data = {**order_data(order), "device": labels.get(order.device_id or 0)}
        raise_notice(session, order.shopper_id, notice, data, now,
                     order_id=order.id, device_id=order.device_id, event_id=event.id)  # fmt: skip
        raised += 1
    session.flush()
    return raised


def order_data(order: Order) -> dict[str, Any]:
    """What an order notice says about its order, copied when it is raised."""
    summary = ", ".join(f"{line.quantity} × {line.name}" for line in order.lines)
    whole, cents = divmod(order.total_minor, 100)
    return {
        "order_id": order.id,
        "summary": summary,
        "total": f"{order.currency} {whole:,}.{cents:02d}",
        "cancel_until": _iso(order.cancel_until),
        "carrier": order.carrier,
        "expected": _iso(order.expected_delivery_at),
        "reason": order.delay_reason,
        "held": _held(order),
        "test": order.test,
    }


def _held(order: Order) -> str | None:
    """Old and new of an order the price guard held, in words; None when it was not."""
    if order.hold_reason is None or not order.lines:
        return None
    now = order.lines[0]
    if order.hold_reason == "product_changed":
        return f"It is {now.sku} instead of {order.consented_sku or 'the product'} you agreed to."
    was, new = order.consented_price_minor or 0, now.unit_price_minor
    return (
        f"The price went up from {order.currency} {was // 100}.{was % 100:02d} to "
        f"{order.currency} {new // 100}.{new % 100:02d} each since you agreed to it."
    )


def device_label(session: Session, device_id: int) -> str | None:
    """The name its shopper gave a device under its active link, else model and serial."""
    return _device_labels(session, {device_id}).get(device_id)


def my_notices(db: Database, shopper_id: int, *, limit: int = LIST_LIMIT) -> list[NoticeView]:
    """The shopper's notices, newest first."""
    with db.read() as session:
        rows = session.scalars(
            select(Notification)
            .where(Notification.shopper_id == shopper_id)
            .order_by(Notification.id.desc())
            .limit(max(1, min(limit, LIST_LIMIT)))
        )
        return [_view(row) for row in rows]


def unread_count(db: Database, shopper_id: int) -> int:
    """How many of the shopper's notices are unread."""
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    Notification.shopper_id == shopper_id, Notification.read_at.is_(None)
                )
            )
            or 0
        )


def mark_read(db: Database, shopper_id: int, notice_id: int | None = None) -> int:
    """Mark one notice (or, with None, every notice) of the shopper read; returns how many."""
    query = update(Notification).where(
        Notification.shopper_id == shopper_id, Notification.read_at.is_(None)
    )
    if notice_id is not None:
        query = query.where(Notification.id == notice_id)

    def work(session: Session) -> int:
        if (
            notice_id is not None
            and session.scalar(
                select(Notification.id).where(
                    Notification.id == notice_id, Notification.shopper_id == shopper_id
                )
            )
            is None
        ):
            raise NotFound("not_found", "no such notice")
        return int(session.execute(query.values(read_at=utcnow())).rowcount)  # type: ignore[attr-defined]

    return db.run_write(work)


def email_choices(db: Database, shopper_id: int) -> tuple[frozenset[str], str | None]:
    """The kinds the shopper gets by e-mail, and the address they go to."""
    with db.read() as session:
        shopper = session.get(Shopper, shopper_id)
        if shopper is None or shopper.deleted_at is not None:
            raise NotFound("not_found", "no such shopper")
        return email_kinds(shopper.email_notices), shopper.email


def set_email_choices(db: Database, shopper_id: int, kinds: Iterable[str]) -> None:
    """Choose the kinds that also arrive by e-mail (every notice shows in the app)."""
    chosen = list(dict.fromkeys(kinds))
    unknown = [kind for kind in chosen if kind not in NOTICE_TEXT]
    if unknown:
        raise InvalidRequest("unknown_notice_kind", f"unknown kinds: {', '.join(unknown)}")

    def work(session: Session) -> None:
        shopper = session.get(Shopper, shopper_id, with_for_update=True)
        if shopper is None or shopper.deleted_at is not None:
            raise NotFound("not_found", "no such shopper")
        shopper.email_notices = [kind for kind in NOTICE_TEXT if kind in chosen]

    db.run_write(work)


def _view(row: Notification) -> NoticeView:
    return NoticeView(
        row.id,
        row.kind,
        text_of(row.kind, row.data or {}),
        row.order_id,
        row.device_id,
        row.created_at,
        row.read_at is not None,
        dict(row.data or {}),
    )


def _orders(session: Session, ids: set[str]) -> dict[str, Order]:
    if not ids:
        return {}
    rows = session.scalars(
        select(Order).where(in_list(Order.id, "ids")).options(selectinload(Order.lines)),
        {"ids": sorted(ids)},
    )
    return {order.id: order for order in rows}


def _device_ids(wanted: list[tuple[Any, str]], orders: dict[str, Order]) -> set[int]:
    ids = {order.device_id for order in orders.values() if order.device_id is not None}
    ids |= {int(e.data["device_id"]) for e, _ in wanted if (e.data or {}).get("device_id")}
    return ids


def _device_labels(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(Device.id, Device.serial, Device.name, DeviceModel.name, DeviceLink.name)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .outerjoin(
            DeviceLink, (DeviceLink.device_id == Device.id) & (DeviceLink.status == "active")
        )
        .where(Device.id.in_(sorted(ids)))
    )
    return {
        device_id: link_name or name or f"{model} {serial}"
        for device_id, serial, name, model, link_name in rows
    }


def _alert_only_owner(session: Session, device_id: Any) -> tuple[int, int] | None:
    """(shopper, device) when the device's active link only alerts; else None (a link that
    orders by itself answers a low level with an order, which is its own notice)."""
    if not isinstance(device_id, int):
        return None
    shopper_id = session.scalar(
        select(DeviceLink.shopper_id).where(
            DeviceLink.device_id == device_id,
            DeviceLink.status == "active",
            DeviceLink.policy == "alert",
        )
    )
    return None if shopper_id is None else (shopper_id, device_id)


def _supply_data(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key) for key in ("slot", "unit", "level", "capacity", "measured_at")}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
