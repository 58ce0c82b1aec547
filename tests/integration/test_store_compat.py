"""The store's psycopg set-up on a real PostgreSQL connection (orders/store/compat_psycopg.py)."""

from __future__ import annotations

import pytest
from psycopg.adapt import PyFormat
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import text

from tests.conftest import Backend


@pytest.mark.postgres
def test_postgresql_connections_send_lists_as_binary_arrays(postgresql_backend: Backend) -> None:
    """Every pooled connection dumps list parameters with psycopg's binary array dumper."""
    with postgresql_backend.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        assert driver.adapters.get_dumper(list, PyFormat.AUTO) is ListBinaryDumper
        ids = [1, 2**40, -3]
        assert conn.execute(text("SELECT CAST(:ids AS BIGINT[])"), {"ids": ids}).scalar() == ids
