"""The REST API under /api/v1: orders, catalog, devices (and webhooks), with its OpenAPI document.

Each module adds its routes to `base.bp`; importing them here registers them.
"""

from __future__ import annotations

from dashboard.api import devices, docs, orders, products, tracking, webhooks
from dashboard.api.base import bp

__all__ = ["bp", "devices", "docs", "orders", "products", "tracking", "webhooks"]
