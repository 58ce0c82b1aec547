"""Merchant pages at 1k vs 100k devices, over a real HTTP server (waitress), side by side.

python -m bench.dashboard [--small 1000] [--large 100000] [--url DATABASE_URL] [--repeat 15]

Each scale gets its own scratch database seeded with bulk inserts: N devices (half buttons,
half coffee machines), 10·N telemetry readings, 2·N orders, N/4 shoppers. The table shows
the median time of each page at both scales and their ratio (target: ≤ 2×).
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text
from tqdm import tqdm

from auth.accounts import create_account
from auth.clients import create_device_model_client
from bench.common import scratch_database
from orders.services.catalog import SlotSpec, add_product, create_store
from orders.store.db import Database, utcnow
from orders.store.model import Device, DeviceLink, Order, OrderLine, Shopper, SupplyReading
from restock.app import create_app
from restock.server import web_in_thread
from restock.settings import Settings

CHUNK = 20_000
PASSWORD = "bench password 1234"
EMAIL = "merchant@bench.test"


@dataclass(frozen=True)
class Seeded:
    """What the timings need to know about a seeded store."""

    store_id: int
    appliance_model_id: int
    devices: int
    sample_serial: str


def _chunks(
    rows: Iterator[dict[str, Any]], total: int, label: str
) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with tqdm(total=total, desc=label, unit="row", leave=False) as bar:
        for row in rows:
            batch.append(row)
            if len(batch) == CHUNK:
                yield batch
                bar.update(len(batch))
                batch = []
        if batch:
            yield batch
            bar.update(len(batch))


def _bulk(db: Database, model: Any, rows: Iterator[dict[str, Any]], total: int, label: str) -> None:
    for batch in _chunks(rows, total, label):
        with db.write() as session:
            session.execute(insert(model), batch)


def seed(db: Database, n: int, rng: random.Random) -> Seeded:
    """A store with n devices, 10n readings, 2n orders, through bulk inserts."""
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench Store", currency="EUR")
        for i in range(20):
            add_product(session, store, sku=f"SKU-{i}", name=f"Product {i}", price_minor=500 + i,
                        stock=5 if i % 7 == 0 else 10_000)  # fmt: skip
        create_account(session, email=EMAIL, password=PASSWORD, store_id=store.id)
        store_id = store.id
    button_id, _ = create_device_model_client(
        db, store_id, name="Button", kind="button", skus=["SKU-1"]
    )
    appliance_id, _ = create_device_model_client(
        db, store_id, name="Coffee machine", kind="appliance",
        slot=SlotSpec("pods", "count", 50, "SKU-2", 50),
    )  # fmt: skip
    now = utcnow()
    shoppers = max(1, n // 4)
    _bulk(db, Shopper, ({"id": i + 1, "name": f"Shopper {i}", "email": f"s{i}@bench.test",
                         "voice_pin_failures": 0, "created_at": now} for i in range(shoppers)),
          shoppers, "shoppers")  # fmt: skip

    def device_rows() -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"id": i + 1, "store_id": store_id, "serial": f"SN-{i:07d}", "created_at": now,
                   "model_id": appliance_id if i % 2 else button_id,
                   "last_seen_at": now - timedelta(minutes=rng.randrange(10_000))}  # fmt: skip

    _bulk(db, Device, device_rows(), n, "devices")

    def link_rows() -> Iterator[dict[str, Any]]:
        for i in range(n):
            if i % 10 == 9:
                continue  # one device in ten is not linked
            yield {"id": i + 1, "device_id": i + 1, "shopper_id": i % shoppers + 1,
                   "store_id": store_id, "product_id": None, "quantity": 1,
                   "approval_required": False, "paused": i % 20 == 3, "policy": "threshold",
                   "risk": 0.05, "cover_days": 14.0, "status": "active",
                   "created_at": now - timedelta(days=120)}  # fmt: skip

    _bulk(db, DeviceLink, link_rows(), n - n // 10, "links")
    appliances = n // 2

    def reading_rows() -> Iterator[dict[str, Any]]:
        per = max(1, 10 * n // appliances)
        for k in range(appliances):
            device_id = 2 * k + 2  # odd i → appliance → id i+1 even
            level = 50.0
            final = rng.choice([3.0, 6.0, 20.0, 30.0, 40.0, 45.0, 48.0])  # ~2/7 end low
            for j in range(per):
                level = 50 - (50 - final) * (j + 1) / per
                at = now - timedelta(hours=per - j)
                yield {"device_id": device_id, "slot": "pods", "value": level, "unit": "count",
                       "measured_at": at, "received_at": now}  # fmt: skip

    _bulk(db, SupplyReading, reading_rows(), 10 * n, "readings")
    statuses = ["delivered"] * 70 + ["shipped"] * 10 + ["placed"] * 15 + ["cancelled"] * 4
    statuses += ["pending_approval"]
    span = timedelta(days=90) / (2 * n)

    def order_rows() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for i in range(2 * n):
            device = i % n + 1
            # At most one open order per device and product (the database enforces it).
            status = rng.choice(statuses) if i < n else rng.choice(["delivered", "cancelled"])
            created = now - timedelta(days=90) + span * i
            order_id = f"o{i:09d}{secrets.token_hex(4)}"
            yield (
                {"id": order_id, "store_id": store_id, "shopper_id": (device - 1) % shoppers + 1,
                 "device_id": device, "device_product_id": None, "channel": "button",
                 "status": status, "total_minor": 501, "currency": "EUR", "created_at": created,
                 "updated_at": created, "cancel_until": created + timedelta(minutes=30)},
                {"order_id": order_id, "product_id": 2, "sku": "SKU-1", "name": "Product 1",
                 "quantity": 1, "unit_price_minor": 501, "line_total_minor": 501},
            )  # fmt: skip

    pairs = order_rows()
    for batch in _chunks((row for pair in pairs for row in pair), 4 * n, "orders+lines"):
        with db.write() as session:
            session.execute(insert(Order), [r for r in batch if "status" in r])
            session.execute(insert(OrderLine), [r for r in batch if "status" not in r])
    with db.engine.begin() as conn:
        # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) does in production.
        conn.execute(text("ANALYZE"))
    return Seeded(store_id, appliance_id, n, f"SN-{n // 2:07d}")


@contextmanager
def serve(db: Database) -> Iterator[str]:
    """The app on waitress in a thread, on a free port."""
    settings = Settings(database_url=str(db.engine.url), secret_key=secrets.token_urlsafe(32),
                        mdns=False)  # fmt: skip
    with web_in_thread(create_app(settings, db)) as base:
        yield base


def sign_in(base: str) -> requests.Session:
    """A requests session signed in through the real login form."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
    reply = session.post(f"{base}/login", data=form, timeout=30)
    assert reply.ok and "Sign out" in reply.text, "bench sign-in failed"
    return session


def pages(seeded: Seeded, rng: random.Random) -> dict[str, list[str]]:
    """The merchant pages to time (several URLs per row where ids vary)."""
    s = f"/stores/{seeded.store_id}"
    some = [rng.randrange(1, seeded.devices + 1) for _ in range(20)]
    return {
        "devices": [f"{s}/devices"],
        "devices, page 2": ["NEXT"],
        "devices by model": [f"{s}/devices?model={seeded.appliance_model_id}"],
        "devices paused": [f"{s}/devices?status=paused"],
        "devices low supply": [f"{s}/devices?low=1"],
        "devices by serial": [f"{s}/devices?serial={seeded.sample_serial}"],
        "device detail": [f"{s}/devices/{d}" for d in some],
        "orders": [f"{s}/orders"],
        "orders to ship": [f"{s}/orders?status=placed"],
        "orders pending approval": [f"{s}/orders?status=pending_approval"],
        "low stock": [f"{s}/low-stock"],
    }


def _urls(
    base: str, http: requests.Session, seeded: Seeded, rng: random.Random
) -> dict[str, list[str]]:
    first = http.get(f"{base}/stores/{seeded.store_id}/devices", timeout=60).text
    cursor = re.search(r'rel="next" href="([^"]+)"', first)
    urls = pages(seeded, rng)
    urls["devices, page 2"] = [cursor.group(1).replace("&amp;", "&")] if cursor else []
    for group in urls.values():
        for url in group:  # warm-up: templates compiled, caches filled
            assert http.get(f"{base}{url}", timeout=60).status_code == 200, url
    return urls


def _timed(http: requests.Session, url: str) -> float:
    start = time.perf_counter()
    reply = http.get(url, timeout=60)
    elapsed = time.perf_counter() - start
    assert reply.status_code == 200, url
    return elapsed


def run(url: str | None, sizes: list[int], repeat: int) -> dict[int, dict[str, float]]:
    """Seed each scale in its own scratch database, serve both, then time them interleaved.

    Interleaving (small, large, small, large…) keeps load from other processes on a shared
    machine from landing on one scale only.
    """
    with ExitStack() as stack:
        targets = []
        for n in sizes:
            rng = random.Random(n)
            db = stack.enter_context(scratch_database(url))
            start = time.perf_counter()
            seeded = seed(db, n, rng)
            print(f"seeded {n:,} devices in {time.perf_counter() - start:.1f} s", flush=True)
            base = stack.enter_context(serve(db))
            http = sign_in(base)
            targets.append((n, base, http, _urls(base, http, seeded, rng)))
        samples: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
        names = list(targets[0][3])
        for name in tqdm(names, desc="timing", leave=False):
            for i in range(repeat):
                for n, base, http, urls in targets:
                    group = urls[name]
                    took = _timed(http, f"{base}{group[i % len(group)]}")
                    samples[n].setdefault(name, []).append(took)
        return {
            n: {name: statistics.median(values) * 1000 for name, values in by_name.items()}
            for n, by_name in samples.items()
        }


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--url", default=None, help="DATABASE_URL (default: env, else SQLite)")
    args = parser.parse_args()
    results = run(args.url, [args.small, args.large], args.repeat)
    small, large = results[args.small], results[args.large]
    backend = (args.url or "sqlite").split(":")[0]
    table = Table(title=f"Merchant pages, median of {args.repeat} requests, on {backend}")
    for column in ("page", f"{args.small:,} devices ms", f"{args.large:,} devices ms", "ratio"):
        table.add_column(column)
    for name in small:
        ratio = large[name] / small[name]
        table.add_row(name, f"{small[name]:.1f}", f"{large[name]:.1f}",
                      f"[{'green' if ratio <= 2 else 'red'}]{ratio:.2f}×[/]")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
