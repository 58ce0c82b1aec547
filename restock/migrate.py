"""Alembic, driven from code: `python -m restock migrate` and the test fixtures use it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs on `engine` (its URL, search path and all)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the database to `revision` (every branch head by default)."""
    command.upgrade(alembic_config(engine), revision)


@cache
def script_heads() -> frozenset[str]:
    """The head revisions of the migrations shipped with this code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def database_heads(conn: Connection) -> frozenset[str]:
    """The revisions the database says it is at (read directly: Alembic's context logs)."""
    return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
