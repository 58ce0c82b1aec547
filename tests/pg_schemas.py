"""A fresh PostgreSQL schema of its own for tests that need an empty or unshared database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tests.conftest import POSTGRES_URL, require_or_skip


def schema_url(schema: str) -> str:
    """RESTOCK_TEST_POSTGRES_URL with `schema` first on the search path (a DATABASE_URL)."""
    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Create an empty schema, yield its name, drop it; skips (fails under CI) without one."""
    if not POSTGRES_URL:
        require_or_skip("RESTOCK_TEST_POSTGRES_URL is not set")
    assert POSTGRES_URL is not None
    schema = f"restock_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        require_or_skip(f"PostgreSQL at RESTOCK_TEST_POSTGRES_URL is unreachable: {exc}")
    try:
        yield schema
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
