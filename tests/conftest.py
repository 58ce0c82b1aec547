"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when set)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from orders.store.db import Database, make_engine, utcnow
from restock.app import create_app
from restock.migrate import upgrade
from restock.models import Base
from restock.settings import Settings
from tests.log_secrets import pytest_configure, pytest_sessionfinish  # noqa: F401 (secrets in logs)
from tests.smtp_inbox import inbox  # noqa: F401 (a fixture: a real SMTP server on loopback)
from voice_skill.verification import AlexaRequestVerifier

POSTGRES_URL = os.environ.get("RESTOCK_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def require_or_skip(reason: str) -> None:
    """Skip with `reason` on a laptop; under CI=true a missing part is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Backend:
    """A migrated database for one test run, and how to empty it between tests."""

    name: str
    engine: Engine
    url: str
    schema: str | None = None

    def clean(self) -> None:
        """Delete every row so the next test starts from an empty schema."""
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        with self.engine.begin() as conn:
            if self.name == "postgresql":
                conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            else:
                for table in tables:
                    conn.exec_driver_sql(f"DELETE FROM {table}")


def _sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'restock.db'}"
    engine = make_engine(url)
    upgrade(engine)
    return Backend("sqlite", engine, url)


def _postgres_backend() -> Iterator[Backend]:
    if not POSTGRES_URL:
        require_or_skip("RESTOCK_TEST_POSTGRES_URL is not set")
        return
    # Each run gets its own schema, so parallel runs never see each other's rows.
    schema = f"restock_test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        require_or_skip(f"PostgreSQL at RESTOCK_TEST_POSTGRES_URL is unreachable: {exc}")
        return
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield Backend("postgresql", engine, POSTGRES_URL, schema)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A migrated SQLite file for this run."""
    backend = _sqlite_backend(tmp_path_factory)
    yield backend
    backend.engine.dispose()


@pytest.fixture(scope="session")
def postgresql_backend() -> Iterator[Backend]:
    """A migrated PostgreSQL schema for this run."""
    yield from _postgres_backend()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn, emptied after the test."""
    chosen: Backend = request.getfixturevalue(f"{request.param}_backend")
    try:
        yield chosen
    finally:
        chosen.clean()


@pytest.fixture
def db(backend: Backend) -> Database:
    """A Database (units of work) over the backend under test."""
    return Database(backend.engine)


class AppFactory(Protocol):
    """Builds the app the one way tests build it: `create_app` over a database."""

    def __call__(
        self,
        db: Database,
        *,
        config: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        alexa_verifier: AlexaRequestVerifier | None = None,
        **settings: Any,
    ) -> Flask: ...


@pytest.fixture
def app_factory(tmp_path: Path) -> AppFactory:
    """`create_app` over `db` with test settings; other keywords replace Settings fields.

    `config` updates the Flask config; `clock` and `alexa_verifier` go to `create_app`.
    """

    def build(
        db: Database,
        *,
        config: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        alexa_verifier: AlexaRequestVerifier | None = None,
        **overrides: Any,
    ) -> Flask:
        defaults = Settings(
            # The settings name the database the app is handed, never another one.
            database_url=db.engine.url.render_as_string(hide_password=False),
            secret_key="test-secret-key-" + secrets.token_hex(8),
            var_dir=tmp_path / "var",
            mdns=False,
            public_url="http://restock.test",
        )
        flask_app = create_app(
            replace(defaults, **overrides), db, clock=clock, alexa_verifier=alexa_verifier
        )
        flask_app.config.update({"TESTING": True, **(config or {})})
        return flask_app

    return build


@pytest.fixture
def app(app_factory: AppFactory, db: Database) -> Flask:
    """The Flask app over the backend under test (real routes, real database)."""
    return app_factory(db)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for `app` (keeps cookies between requests)."""
    return app.test_client()
