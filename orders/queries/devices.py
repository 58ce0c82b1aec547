"""Read-only views of devices for the web: model, link, product and supply levels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, exists, select
from sqlalchemy.orm import Session, aliased

from orders.queries.runout import runout_of, slot_history, why_no_runout
from orders.store.db import utcnow
from orders.store.model import (
    Device,
    DeviceLink,
    DeviceModel,
    DeviceModelSlot,
    Order,
    Product,
    Shopper,
    SupplyReading,
)

# A slot at or below this share of its capacity counts as "low supply".
LOW_SUPPLY_FRACTION = 0.2
HISTORY_POINTS = 40

ActiveLink = aliased(DeviceLink, name="active_link")


@dataclass(frozen=True)
class SupplyLevel:
    """One slot's latest level and (optionally) its recent history, oldest first."""

    slot: str
    unit: str
    capacity: float
    value: float | None
    measured_at: datetime | None
    history: tuple[tuple[datetime, float], ...] = ()
    rate_per_day: float | None = None  # predicted use (rows_from(..., runout=True) only)
    runout_at: datetime | None = None  # predicted empty time (rows_from(..., runout=True) only)
    # The rest are filled by rows_from(..., runout=True) only.
    no_runout_because: str | None = None  # why there is no runout_at, in words
    reorder_point: float | None = None  # the link's own level to reorder at, if set
    markers: tuple[tuple[datetime, str], ...] = ()  # (when, "ordered" | "delivered")

    @property
    def fraction(self) -> float | None:
        """The latest level as a share of capacity (0..1, clipped), or None when unknown."""
        if self.value is None:
            return None
        return max(0.0, min(1.0, self.value / self.capacity))

    @property
    def low(self) -> bool:
        """True when the latest level is at or below LOW_SUPPLY_FRACTION of capacity."""
        return self.fraction is not None and self.fraction <= LOW_SUPPLY_FRACTION


@dataclass(frozen=True)
class DeviceRow:
    """A device as a list shows it."""

    device_id: int
    serial: str
    name: str | None
    model_id: int
    model_name: str
    model_kind: str
    link_id: int | None
    shopper_id: int | None
    shopper_name: str | None
    product_sku: str | None
    product_name: str | None
    status: str  # active | paused | unlinked
    linked_at: datetime | None
    last_seen_at: datetime | None
    levels: tuple[SupplyLevel, ...] = ()
    reorder_point: float | None = None  # the link's own reorder level, when set
    test_mode: bool = False  # this unit was switched to test orders by the merchant
    model_test_mode: bool = False  # its whole model places test orders

    @property
    def places_test_orders(self) -> bool:
        """True when its orders are test orders (the unit's or the model's switch)."""
        return self.test_mode or self.model_test_mode

    @property
    def label(self) -> str:
        """The shopper's name for the device, else model and serial."""
        return self.name or f"{self.model_name} {self.serial}"

    @property
    def low(self) -> bool:
        """True when any slot is low."""
        return any(level.low for level in self.levels)


def device_query() -> Select[Device, DeviceModel, DeviceLink, Product, str]:
    """Devices with their model, active link, product and shopper (outer joins)."""
    return (
        select(Device, DeviceModel, ActiveLink, Product, Shopper.name)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .outerjoin(
            ActiveLink, and_(ActiveLink.device_id == Device.id, ActiveLink.status == "active")
        )
        .outerjoin(Product, Product.id == ActiveLink.product_id)
        .outerjoin(Shopper, Shopper.id == ActiveLink.shopper_id)
    )


def latest_reading(column: Any, slot_name: Any) -> ScalarSelect[Any]:
    """A scalar subquery: the device's newest reading's `column` for one slot."""
    return (
        select(column)
        .where(SupplyReading.device_id == Device.id, SupplyReading.slot == slot_name)
        .order_by(SupplyReading.measured_at.desc())
        .limit(1)
        # Correlate explicitly: nested two levels deep (inside EXISTS), auto-correlation
        # would silently add `devices` to the subquery's FROM and compare every device.
        .correlate_except(SupplyReading)
        .scalar_subquery()
    )


def rows_from(
    session: Session,
    results: Iterable[tuple[Device, DeviceModel, DeviceLink | None, Product | None, str | None]],
    *,
    history: int = 0,
    since_link: bool = False,
    runout: bool = False,
) -> list[DeviceRow]:
    """DeviceRows for query results, with supply levels (history and run-out when asked)."""
    bare = [_row(device, model, link, product, shopper) for device, model, link, product, shopper
            in results]  # fmt: skip
    levels = _levels(session, bare, history=history, since_link=since_link)
    if runout:
        since = {row.device_id: row.linked_at if since_link else None for row in bare}
        now = utcnow()
        points = {row.device_id: row.reorder_point for row in bare}
        levels = {
            device_id: tuple(
                replace(
                    _with_runout(session, device_id, lv, since[device_id], now),
                    reorder_point=points.get(device_id),
                    markers=_markers(session, device_id, lv.history),
                )
                for lv in found
            )
            for device_id, found in levels.items()
        }
    return [replace(row, levels=levels.get(row.device_id, ())) for row in bare]


def _with_runout(
    session: Session, device_id: int, level: SupplyLevel, since: datetime | None, now: datetime
) -> SupplyLevel:
    """`level` with its predicted rate and run-out time from the slot's stored readings."""
    if level.value is None:
        return replace(level, no_runout_because=why_no_runout((), None))
    history = slot_history(session, device_id, level.slot, now, since)
    predicted = runout_of(history, level.capacity, now)
    if predicted is None or predicted.runout_at is None:
        return replace(level, no_runout_because=why_no_runout(history, predicted))
    return replace(level, rate_per_day=predicted.rate_per_day, runout_at=predicted.runout_at)


def _markers(
    session: Session, device_id: int, history: tuple[tuple[datetime, float], ...]
) -> tuple[tuple[datetime, str], ...]:
    """When the device's orders were placed and delivered, within the history shown."""
    if not history:
        return ()
    start = history[0][0]
    rows = session.execute(
        select(Order.created_at, Order.delivered_at, Order.status).where(
            Order.device_id == device_id, Order.created_at >= start, Order.status != "cancelled"
        )
    ).all()
    found = [(created, "ordered") for created, _delivered, _status in rows]
    found += [(delivered, "delivered") for _created, delivered, _status in rows if delivered]
    return tuple(sorted(found))


def _row(
    device: Device,
    model: DeviceModel,
    link: DeviceLink | None,
    product: Product | None,
    shopper_name: str | None,
) -> DeviceRow:
    status = "unlinked" if link is None else ("paused" if link.paused else "active")
    return DeviceRow(
        device_id=device.id,
        serial=device.serial,
        # The shopper's name under the current link, else the device's own.
        name=(link.name if link else None) or device.name,
        model_id=model.id,
        model_name=model.name,
        model_kind=model.kind,
        link_id=link.id if link else None,
        shopper_id=link.shopper_id if link else None,
        shopper_name=shopper_name,
        product_sku=product.sku if product else None,
        product_name=product.name if product else None,
        status=status,
        linked_at=link.created_at if link else None,
        last_seen_at=device.last_seen_at,
        reorder_point=link.reorder_point if link else None,
        test_mode=device.test_mode,
        model_test_mode=model.test_mode,
    )


def _levels(
    session: Session, rows: Sequence[DeviceRow], *, history: int, since_link: bool
) -> dict[int, tuple[SupplyLevel, ...]]:
    if not rows:
        return {}
    by_id = {row.device_id: row for row in rows}
    # One query for every slot's latest level: each subquery is a seek on the
    # (device_id, slot, measured_at) index, so the cost follows the page size only.
    query = (
        select(
            Device.id,
            DeviceModelSlot.name,
            DeviceModelSlot.unit,
            DeviceModelSlot.capacity,
            latest_reading(SupplyReading.value, DeviceModelSlot.name),
            latest_reading(SupplyReading.measured_at, DeviceModelSlot.name),
        )
        .join(DeviceModelSlot, DeviceModelSlot.model_id == Device.model_id)
        .where(Device.id.in_(list(by_id)))
        .order_by(Device.id, DeviceModelSlot.id)
    )
    found: dict[int, list[SupplyLevel]] = {}
    for device_id, slot, unit, capacity, value, measured in session.execute(query):
        row = by_id[device_id]
        since = row.linked_at if since_link else None
        if since is not None and measured is not None and measured < since:
            # Readings from before this shopper linked the device belong to someone else.
            value = measured = None
        points = _history(session, device_id, slot, history, since) if history else ()
        level = SupplyLevel(slot, unit, capacity, value, measured, points)
        found.setdefault(device_id, []).append(level)
    return {key: tuple(value) for key, value in found.items()}


def _history(
    session: Session, device_id: int, slot: str, points: int, since: datetime | None
) -> tuple[tuple[datetime, float], ...]:
    query = select(SupplyReading.measured_at, SupplyReading.value).where(
        SupplyReading.device_id == device_id, SupplyReading.slot == slot
    )
    if since is not None:
        query = query.where(SupplyReading.measured_at >= since)
    query = query.order_by(SupplyReading.measured_at.desc()).limit(points)
    return tuple(reversed([(at, value) for at, value in session.execute(query)]))


def low_supply() -> ColumnElement[bool]:
    """True for a device whose latest reading of some slot is at or below the low share."""
    # Newest-first keyset scan stops after a page of matches; each candidate costs one
    # index seek per slot, so the cost grows with how rare low devices are, not with n.
    return exists(
        select(DeviceModelSlot.id).where(
            DeviceModelSlot.model_id == Device.model_id,
            latest_reading(SupplyReading.value, DeviceModelSlot.name)
            <= DeviceModelSlot.capacity * LOW_SUPPLY_FRACTION,
        )
    )
