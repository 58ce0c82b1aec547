"""Every package's tables on one metadata, for Alembic and for tests."""

from __future__ import annotations

import auth.model
import orders.store.indexes
import orders.store.model
from orders.store.model import Base

__all__ = ["Base", "auth", "orders"]
