"""Every package's tables on one metadata, for Alembic and for tests."""

from __future__ import annotations

import auth.model
import orders.model
import orders.web_indexes
from orders.model import Base

__all__ = ["Base", "auth", "orders"]
