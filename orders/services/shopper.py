"""What a shopper reads and changes: their devices, orders and voice-purchase settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain.errors import NotFound
from orders.queries.devices import HISTORY_POINTS, ActiveLink, DeviceRow, device_query, rows_from
from orders.queries.pages import Page, clamp_limit, id_cursor, orders_page, page_of
from orders.queries.snapshots import OrderView
from orders.services.devices import LinkRules, update_link
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, Shopper


@dataclass(frozen=True)
class VoiceSettings:
    """Whether a voice PIN is set and above what order total it is asked for."""

    pin_set: bool
    threshold_minor: int | None
    locked_until: datetime | None = None
    approval: bool = False  # voice purchases wait for approval on the web


def list_my_devices(
    db: Database, shopper_id: int, *, cursor: str | None = None, limit: int | None = None
) -> Page[DeviceRow]:
    """The shopper's linked devices, newest link first, with recent supply history."""
    size = clamp_limit(limit)
    before = id_cursor(cursor)
    query = device_query().where(ActiveLink.shopper_id == shopper_id)
    if before is not None:
        query = query.where(ActiveLink.id < before)
    query = query.order_by(ActiveLink.id.desc()).limit(size + 1)
    with db.read() as session:
        rows = rows_from(
            session,
            session.execute(query).all(),
            history=HISTORY_POINTS,
            since_link=True,
            runout=True,
        )
    return page_of(rows, size, lambda r: str(r.link_id))


def set_paused(db: Database, shopper_id: int, device_id: int, paused: bool) -> None:
    """Pause or resume ordering from one of the shopper's devices."""
    db.run_write(
        lambda s: update_link(s, my_link(s, shopper_id, device_id), LinkRules(paused=paused))
    )


def set_maintenance_orders(db: Database, shopper_id: int, device_id: int, allowed: bool) -> None:
    """Let (or stop) a device's reported faults suggest part orders that wait for approval."""
    db.run_write(
        lambda s: update_link(
            s, my_link(s, shopper_id, device_id), LinkRules(maintenance_orders=allowed)
        )
    )


def my_link(session: Session, shopper_id: int, device_id: int) -> DeviceLink:
    """The shopper's active link to a device, locked for change, or NotFound."""
    link = session.scalar(
        select(DeviceLink)
        .where(
            DeviceLink.device_id == device_id,
            DeviceLink.shopper_id == shopper_id,
            DeviceLink.status == "active",
        )
        .with_for_update()
    )
    if link is None:
        raise NotFound("not_found", "no such device")
    return link


def list_my_orders(
    db: Database,
    shopper_id: int,
    *,
    status: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Page[OrderView]:
    """The shopper's orders, newest first."""
    return orders_page(db, shopper_id=shopper_id, status=status, cursor=cursor, limit=limit)


def voice_settings(db: Database, shopper_id: int, *, now: datetime | None = None) -> VoiceSettings:
    """The shopper's voice-purchase settings (never the PIN itself), and any lock in force."""
    moment = now or utcnow()
    with db.read() as session:
        shopper = _shopper(session, shopper_id)
        locked = shopper.voice_locked_until
        return VoiceSettings(
            shopper.voice_pin_hash is not None,
            shopper.voice_pin_threshold_minor,
            locked if locked is not None and moment < locked else None,
            shopper.voice_approval,
        )


def _shopper(session: Session, shopper_id: int) -> Shopper:
    shopper = session.get(Shopper, shopper_id)
    if shopper is None or shopper.deleted_at is not None:
        raise NotFound("not_found", "no such shopper")
    return shopper


def my_device_row(db: Database, shopper_id: int, device_id: int) -> DeviceRow:
    """One of the shopper's linked devices as its card shows it, or NotFound."""
    query = device_query().where(ActiveLink.shopper_id == shopper_id, Device.id == device_id)
    with db.read() as session:
        rows = rows_from(session, session.execute(query).all(), history=HISTORY_POINTS,
                         since_link=True, runout=True)  # fmt: skip
    if not rows:
        raise NotFound("not_found", "no such device")
    return rows[0]
