"""Shared bench plumbing: a throwaway migrated database and latency figures."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from orders.store.db import Database, make_engine
from restock.migrate import upgrade

# The default delivery address of every bench shopper: an order needs one.
HOME = {"name": "Bench shopper", "line1": "1 Main Street", "postcode": "10115",
        "city": "Berlin", "country": "DE"}  # fmt: skip


@contextmanager
def scratch_database(url: str | None) -> Iterator[Database]:
    """A freshly migrated database: a temp SQLite file, or a temp schema in PostgreSQL."""
    url = url or os.environ.get("DATABASE_URL") or "sqlite"
    if url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
            upgrade(engine)
            try:
                yield Database(engine)
            finally:
                engine.dispose()
        return
    schema = f"restock_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield Database(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of `samples`."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


def print_rates(
    title: str, label: str, unit: str, results: dict[str, list[float]], baseline: str
) -> None:
    """A rich table of rate, p50, p99 and the ratio to `baseline`, one row per result."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in (label, f"{unit}/s", "p50 ms", "p99 ms", f"ratio vs {baseline}"):
        table.add_column(column)
    base = len(results[baseline]) / sum(results[baseline])
    for name, latencies in results.items():
        rate = len(latencies) / sum(latencies)
        table.add_row(
            name,
            f"{rate:,.0f}",
            f"{percentile(latencies, 50) * 1000:.2f}",
            f"{percentile(latencies, 99) * 1000:.2f}",
            f"{rate / base:.2f}×",
        )
    Console().print(table)
