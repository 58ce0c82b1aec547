"""Refused attempts to link someone else's device: recorded, and shown to the device's owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from auth.model import LinkAttempt
from orders.services.notifications import device_label, raise_notice
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, DeviceModel

# One record per account and link in this window: retrying the refused approval (the
# /link page is rate limited per account) does not grow the table.
REPEAT_WINDOW = timedelta(hours=1)
SHOWN_FOR = timedelta(days=30)
SHOWN_PER_DEVICE = 3


@dataclass(frozen=True)
class AttemptView:
    """A refused link attempt as its owner sees it (never who the other account is)."""

    device_id: int
    model_name: str
    serial: str
    attempted_at: datetime


def record_attempt(
    session: Session,
    link: DeviceLink,
    account_id: int,
    client_id: str,
    serial: str,
    now: datetime,
) -> None:
    """Note that `account_id` tried to link the device behind the active `link`."""
    recent = session.scalar(
        select(LinkAttempt.id).where(
            LinkAttempt.link_id == link.id,
            LinkAttempt.account_id == account_id,
            LinkAttempt.attempted_at > now - REPEAT_WINDOW,
        )
    )
    if recent is None:
        session.add(
            LinkAttempt(
                link_id=link.id,
                device_id=link.device_id,
                account_id=account_id,
                client_id=client_id,
                serial=serial,
                attempted_at=now,
            )
        )
        # The owner hears of it (once per account and hour, like the record).
        data = {"device": device_label(session, link.device_id), "at": now.isoformat()}
        raise_notice(session, link.shopper_id, "link_attempted", data, now,
                     device_id=link.device_id)  # fmt: skip


def attempts_on_my_devices(
    db: Database, shopper_id: int, *, now: datetime | None = None
) -> dict[int, tuple[AttemptView, ...]]:
    """Recent refused attempts on the shopper's active links, newest first, by device id."""
    now = now or utcnow()
    query = (
        select(
            LinkAttempt.device_id, DeviceModel.name, LinkAttempt.serial, LinkAttempt.attempted_at
        )
        .join(DeviceLink, DeviceLink.id == LinkAttempt.link_id)
        .join(Device, Device.id == LinkAttempt.device_id)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .where(
            DeviceLink.shopper_id == shopper_id,
            DeviceLink.status == "active",
            LinkAttempt.attempted_at > now - SHOWN_FOR,
        )
        .order_by(LinkAttempt.attempted_at.desc(), LinkAttempt.id.desc())
        .limit(100)
    )
    found: dict[int, list[AttemptView]] = {}
    with db.read() as session:
        for device_id, model_name, serial, at in session.execute(query):
            shown = found.setdefault(device_id, [])
            if len(shown) < SHOWN_PER_DEVICE:
                shown.append(AttemptView(device_id, model_name, serial, at))
    return {device_id: tuple(views) for device_id, views in found.items()}
