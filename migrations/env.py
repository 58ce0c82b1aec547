"""Alembic environment: the engine comes from restock.migrate (never built at import)."""

from __future__ import annotations

from typing import Any

from alembic import context

from restock.models import Base

config = context.config
target_metadata = Base.metadata


def _sqlite_foreign_keys(connection: Any, on: bool) -> None:
    # The pragma is a no-op inside a transaction, so it goes to the driver before BEGIN.
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _sqlite_dangling_references(connection: Any) -> list[Any]:
    return list(connection.exec_driver_sql("PRAGMA foreign_key_check").all())


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by DROP and rename: with foreign keys on, dropping a
            # table that rows refer to fails (or cascades away their rows) in a filled database.
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite and (dangling := _sqlite_dangling_references(connection)):
                    raise RuntimeError(f"migration left dangling references: {dangling[:5]}")
            connection.commit()
        finally:
            if sqlite:
                connection.rollback()
                _sqlite_foreign_keys(connection, on=True)


run_migrations_online()
