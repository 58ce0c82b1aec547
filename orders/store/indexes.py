"""Indexes the web lists need to stay fast at 100k devices (migration `dash_0002`).

Declared here rather than in `model.py` so the shared model file stays untouched; importing
this module (restock/models.py does) attaches them to the tables' metadata.
"""

from __future__ import annotations

from sqlalchemy import Index

from orders.store.model import Device, DeviceLink, Order

INDEXES = (
    # The merchant's device list: newest first within one store (keyset on id). PostgreSQL
    # would otherwise read every device of the store and sort them.
    Index("ix_devices_store_id_id", Device.store_id, Device.id),
    # Finding a device by its serial number within a store.
    Index("ix_devices_store_id_serial", Device.store_id, Device.serial),
    # Joining a device to its links (the active-link index is partial, which the planners
    # use only when the query repeats its predicate; the outer join then scans).
    Index("ix_device_links_device_id", DeviceLink.device_id),
    # The merchant's orders filtered by status, newest first ("to ship" = placed).
    Index("ix_orders_store_status_created", Order.store_id, Order.status, Order.created_at),
)
