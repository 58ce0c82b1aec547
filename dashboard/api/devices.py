"""Devices: list and filter, get (supply levels, predicted run-out), revoke; device models."""

from __future__ import annotations

from typing import Any

from flask import url_for
from spectree import Response as Responses

from auth.clients import create_device_model_client
from auth.revocation import revoke_store_device
from dashboard.api.base import ID, bp, created, endpoint, store_id
from dashboard.api.schemas import (
    Device,
    DeviceChange,
    DeviceList,
    DeviceModel,
    DeviceModelList,
    DeviceQuery,
    NewDeviceModel,
    PageQuery,
)
from dashboard.common import get_db
from orders.queries.resources import device_model_resource, device_resource
from orders.services import merchant
from orders.services.catalog import SlotSpec

TAGS = ("devices",)


@bp.get("/devices")
@endpoint("devices:read", query=DeviceQuery, resp=Responses(HTTP_200=DeviceList), tags=TAGS)
def list_devices(query: DeviceQuery) -> Any:
    """The store's devices, newest first, by model, link status or low supply."""
    filters = merchant.DeviceFilter(model_id=query.model, status=query.status,
                                    low_supply=query.low_supply)  # fmt: skip
    page = merchant.list_devices(get_db(), store_id(), filters, cursor=query.cursor,
                                 limit=query.limit)  # fmt: skip
    return {"devices": [device_resource(d) for d in page.items], "next_cursor": page.next_cursor}


@bp.get(f"/devices/<{ID}:device_id>")
@endpoint("devices:read", resp=Responses(HTTP_200=Device), tags=TAGS, errors=(404,))
def get_device(device_id: int) -> Any:
    """One device with each slot's level, use per day and predicted run-out."""
    return device_resource(merchant.get_device(get_db(), store_id(), device_id).row)


@bp.patch(f"/devices/<{ID}:device_id>")
@endpoint("devices:write", json=DeviceChange, resp=Responses(HTTP_200=Device), tags=TAGS,
          errors=(404, 415, 422))  # fmt: skip
def change_device(device_id: int, json: DeviceChange) -> Any:
    """Switch one linked unit to test orders, or back to real ones."""
    db = get_db()
    merchant.set_device_test_mode(db, store_id(), device_id, json.test_mode)
    return device_resource(merchant.get_device(db, store_id(), device_id).row)


@bp.post(f"/devices/<{ID}:device_id>/revoke")
@endpoint("devices:write", resp=Responses(HTTP_200=Device), tags=TAGS, errors=(404,))
def revoke_device(device_id: int) -> Any:
    """End the device's link and revoke its tokens; it must be linked again to order."""
    db = get_db()
    revoke_store_device(db, store_id(), device_id)
    return device_resource(merchant.get_device(db, store_id(), device_id).row)


@bp.get("/device-models")
@endpoint("devices:read", query=PageQuery, resp=Responses(HTTP_200=DeviceModelList), tags=TAGS)
def list_device_models(query: PageQuery) -> Any:
    """The store's device models by id."""
    page = merchant.list_models(get_db(), store_id(), cursor=query.cursor, limit=query.limit)
    return {
        "device_models": [device_model_resource(m) for m in page.items],
        "next_cursor": page.next_cursor,
    }


@bp.post("/device-models")
@endpoint("devices:write", json=NewDeviceModel, resp=Responses(HTTP_201=DeviceModel),
          tags=TAGS, idempotent=True, errors=(415, 422))  # fmt: skip
def create_device_model(json: NewDeviceModel) -> Any:
    """Add a device model and its public OAuth client (its `client_id` goes in the firmware)."""
    slot = json.slot
    spec = SlotSpec(slot.name, slot.unit, slot.capacity, slot.sku, slot.units_per_pack) if slot \
        else None  # fmt: skip
    db = get_db()
    model_id, _ = create_device_model_client(
        db, store_id(), name=json.name, kind=json.kind, skus=json.skus, slot=spec,
        test_mode=json.test_mode,
    )  # fmt: skip
    model = merchant.get_model(db, store_id(), model_id)
    return created(device_model_resource(model), url_for(".list_device_models"))
