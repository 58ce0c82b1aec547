"""Resources as the merchant REST API shows them: plain dicts, one function per kind.

Webhook events carry the same dicts in their `data`, so an event and a GET agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orders.queries.devices import DeviceRow, SupplyLevel
from orders.queries.snapshots import OrderView
from orders.services.merchant import ModelView, ProductView
from orders.services.products import AdjustmentView


def iso(moment: datetime | None) -> str | None:
    """A UTC time as RFC 3339 text with `Z`, or None."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def order_resource(order: OrderView) -> dict[str, Any]:
    """An order (CONTRACT: `id, status, channel, lines, total_minor, currency, ship_to`)."""
    return {
        "id": order.id,
        "status": order.status,
        "channel": order.channel,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
            }
            for line in order.lines
        ],
        "total_minor": order.total_minor,
        "currency": order.currency,
        "created": iso(order.created_at),
        "updated": iso(order.updated_at),
        "cancel_until": iso(order.cancel_until),
        "device_id": order.device_id,
        "ship_to": order.ship_to.as_dict() if order.ship_to is not None else None,
        "shipment": _shipment(order),
        "test": order.test,
        "hold": order.hold_dict(),
        "approval_by": order.approval_by if order.status == "pending_approval" else None,
    }


def _shipment(order: OrderView) -> dict[str, Any] | None:
    if order.status not in ("shipped", "delivered"):
        return None
    return {
        "carrier": order.carrier,
        "tracking_number": order.tracking_ref,
        "tracking_url": order.tracking_url,
    }


def product_resource(product: ProductView) -> dict[str, Any]:
    """A catalog entry; `active` false once archived."""
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "price_minor": product.price_minor,
        "currency": product.currency,
        "stock": product.stock,
        "pack_size": product.pack_size,
        "aliases": list(product.aliases),
        "active": product.active,
        "low_stock_level": product.low_stock_level,
        "archived": product.archived,
    }


def device_model_resource(model: ModelView) -> dict[str, Any]:
    """A device model with the OAuth client id its devices link with."""
    return {
        "id": model.id,
        "name": model.name,
        "kind": model.kind,
        "client_id": model.client_id,
        "test_mode": model.test_mode,
        "security": model.security,
        "skus": list(model.skus),
        "slots": [
            {"name": name, "unit": unit, "capacity": capacity, "sku": sku, "policy": policy}
            for (name, unit, capacity, sku), policy in zip(
                model.slot_specs,
                model.slot_policies or ("threshold",) * len(model.slot_specs),
                strict=True,
            )
        ],
        "conditions": [
            {"name": name, "kind": kind, "threshold": threshold, "message": message, "sku": sku}
            for name, kind, threshold, message, sku in model.conditions
        ],
    }


def stock_adjustment_resource(adjustment: AdjustmentView) -> dict[str, Any]:
    """One recorded stock change and the stock it left."""
    return {
        "id": adjustment.id,
        "product_id": adjustment.product_id,
        "sku": adjustment.sku,
        "delta": adjustment.delta,
        "reason": adjustment.reason,
        "stock_after": adjustment.stock_after,
        "created": iso(adjustment.created_at),
    }


def device_resource(row: DeviceRow) -> dict[str, Any]:
    """A device, its link (if any) and each slot's supply level and predicted run-out."""
    return {
        "id": row.device_id,
        "serial": row.serial,
        "name": row.name,
        "model": {"id": row.model_id, "name": row.model_name, "kind": row.model_kind},
        "status": row.status,
        "product_sku": row.product_sku,
        "linked_at": iso(row.linked_at),
        "last_seen_at": iso(row.last_seen_at),
        "low_supply": row.low,
        "supplies": [_supply(level) for level in row.levels],
        "test_mode": row.test_mode,
        "places_test_orders": row.places_test_orders,
    }


def _supply(level: SupplyLevel) -> dict[str, Any]:
    return {
        "slot": level.slot,
        "unit": level.unit,
        "capacity": level.capacity,
        "level": level.value,
        "measured_at": iso(level.measured_at),
        "low": level.low,
        "rate_per_day": level.rate_per_day,
        "runout_at": iso(level.runout_at),
    }
