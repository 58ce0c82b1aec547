"""run_write re-runs a unit of work that lost a unique-key race, as many times as asked."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders.services.catalog import create_store
from orders.store.db import Database
from orders.store.model import Store
from tests.factories import count


def _first_try_collides(db: Database, calls: list[int]) -> None:
    with db.write() as session:
        create_store(session, slug="taken", name="Taken", currency="EUR")

    def work(session: Session) -> None:
        calls.append(1)
        slug = "taken" if len(calls) == 1 else "free"  # the second run sees the winner
        create_store(session, slug=slug, name="Mine", currency="EUR")

    db.run_write(work, races=1)


def test_a_lost_race_is_run_again(db: Database) -> None:
    calls: list[int] = []
    _first_try_collides(db, calls)
    assert len(calls) == 2
    assert count(db, Store) == 2


def test_without_races_allowed_the_integrity_error_surfaces(db: Database) -> None:
    with db.write() as session:
        create_store(session, slug="taken", name="Taken", currency="EUR")

    def work(session: Session) -> None:
        create_store(session, slug="taken", name="Again", currency="EUR")

    with pytest.raises(IntegrityError):
        db.run_write(work)
    assert count(db, Store) == 1
