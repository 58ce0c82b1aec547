"""Merchant and shopper pages and the REST API's lists at 1k vs 100k devices, over a real
HTTP server (waitress), side by side.

python -m bench.dashboard [--small 1000] [--large 100000] [--url DATABASE_URL] [--repeat 15]
                          [--only merchant|shopper|api]

Each scale gets its own scratch database seeded with bulk inserts: N devices (half buttons,
half coffee machines), 10·N telemetry readings, 2·N orders with their outbox events, N/4
shoppers (the signed-in shopper is one of them, with as many devices and orders as any).
The table shows the median time of each page at both scales and their ratio (target: ≤ 2×).

The pages timed are the `PAGES` table: a new page is one more `Page(...)` row.
"""

from __future__ import annotations

import argparse
import random
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text
from tqdm import tqdm

from auth.accounts import create_account
from auth.clients import create_device_model_client
from auth.principal import MERCHANT_API_SCOPES
from auth.tokens import issue_token
from bench.common import scratch_database
from orders.services.catalog import SlotSpec, add_product, create_store
from orders.store.db import Database, utcnow
from orders.store.model import (
    Device,
    DeviceLink,
    Order,
    OrderEvent,
    OrderLine,
    Shopper,
    SupplyReading,
    WebhookEndpoint,
)
from restock.app import create_app
from restock.server import web_in_thread
from restock.settings import Settings

CHUNK = 20_000
PASSWORD = "bench password 1234"
EMAIL = "merchant@bench.test"
SHOPPER_EMAIL = "shopper@bench.test"


@dataclass(frozen=True)
class Seeded:
    """What the timings need to know about a seeded store."""

    store_id: int
    appliance_model_id: int
    devices: int
    sample_serial: str
    api_token: str = ""
    product_id: int = 1
    endpoint_id: int = 1
    orders: list[str] = field(default_factory=list)  # a sample of the store's order ids
    my_orders: list[str] = field(default_factory=list)  # the signed-in shopper's


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
        # Shopper 1 (the first row): the one the shopper pages sign in as.
        create_account(session, email=SHOPPER_EMAIL, password=PASSWORD, shopper_name="Shopper 0")
        store_id = store.id
        api_token = issue_token(
            session, client_id="bench-api", kind="merchant", store_id=store_id,
            scope=" ".join(MERCHANT_API_SCOPES), with_refresh=False,
        ).access_token  # fmt: skip
        endpoint = WebhookEndpoint(store_id=store_id, url="https://hooks.bench.test/in",
                                   events=[], secret="whsec_" + "A" * 32)  # fmt: skip
        session.add(endpoint)
        session.flush()
        endpoint_id = endpoint.id
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
                         "voice_pin_failures": 0, "created_at": now} for i in range(1, shoppers)),
          shoppers - 1, "shoppers")  # fmt: skip

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
    sample: list[str] = []
    mine: list[str] = []
    for batch in _chunks((row for pair in pairs for row in pair), 4 * n, "orders+lines"):
        orders = [r for r in batch if "status" in r]
        with db.write() as session:
            session.execute(insert(Order), orders)
            session.execute(insert(OrderLine), [r for r in batch if "status" not in r])
            session.execute(insert(OrderEvent), [
                {"order_id": r["id"], "store_id": store_id, "type": "order.created",
                 "status": r["status"], "data": {}, "created_at": r["created_at"],
                 "published_at": r["created_at"]}
                for r in orders
            ])  # fmt: skip
        sample += [r["id"] for r in orders[:: max(1, len(orders) // 10)]]
        mine += [r["id"] for r in orders if r["shopper_id"] == 1]
    with db.engine.begin() as conn:
        # What autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) does in production.
        conn.execute(text("ANALYZE"))
    product_id = 3  # SKU-2, the coffee machines' pods
    return Seeded(store_id, appliance_id, n, f"SN-{n // 2:07d}", api_token, product_id,
                  endpoint_id, sample[-20:], mine[-10:])  # fmt: skip


@contextmanager
def serve(db: Database) -> Iterator[str]:
    """The app on waitress in a thread, on a free port."""
    settings = Settings(database_url=str(db.engine.url), secret_key=secrets.token_urlsafe(32),
                        mdns=False)  # fmt: skip
    with web_in_thread(create_app(settings, db)) as base:
        yield base


def sign_in(base: str, email: str = EMAIL) -> requests.Session:
    """A requests session signed in through the real login form."""
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    form = {"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    reply = session.post(f"{base}/login", data=form, timeout=30)
    assert reply.ok and "Sign out" in reply.text, "bench sign-in failed"
    return session


Who = Literal["merchant", "shopper", "api"]
# The first URL's `rel="next"` link (a page) or `Link` header (the API) is what is timed.
NEXT = "next:"


@dataclass(frozen=True)
class Page:
    """One row of the table: who asks, and the URLs to time (several where ids vary)."""

    name: str
    who: Who
    urls: Callable[[Seeded, random.Random], list[str]]


def _store(seeded: Seeded) -> str:
    return f"/stores/{seeded.store_id}"


def _some_devices(seeded: Seeded, rng: random.Random) -> list[int]:
    return [rng.randrange(1, seeded.devices + 1) for _ in range(20)]


def _m(name: str, path: str) -> Page:
    """A merchant page at a fixed path under the store."""
    return Page(name, "merchant", lambda s, _r: [f"{_store(s)}{path}"])


def _a(name: str, path: str) -> Page:
    """An API list at a fixed path."""
    return Page(name, "api", lambda _s, _r: [f"/api/v1{path}"])


PAGES: list[Page] = [
    # merchant pages
    _m("store overview", "/"),
    _m("catalog", "/products"),
    Page("product", "merchant", lambda s, _r: [f"{_store(s)}/products/{s.product_id}"]),
    _m("low stock", "/low-stock"),
    _m("device models", "/models"),
    Page(
        "device model", "merchant", lambda s, _r: [f"{_store(s)}/models/{s.appliance_model_id}"]
    ),  # fmt: skip
    _m("devices", "/devices"),
    Page("devices, page 2", "merchant", lambda s, _r: [f"{NEXT}{_store(s)}/devices"]),
    Page(
        "devices by model",
        "merchant",
        lambda s, _r: [f"{_store(s)}/devices?model={s.appliance_model_id}"],
    ),  # fmt: skip
    _m("devices paused", "/devices?status=paused"),
    _m("devices low supply", "/devices?low=1"),
    Page(
        "devices by serial",
        "merchant",
        lambda s, _r: [f"{_store(s)}/devices?serial={s.sample_serial}"],
    ),  # fmt: skip
    Page(
        "device detail",
        "merchant",
        lambda s, r: [f"{_store(s)}/devices/{d}" for d in _some_devices(s, r)],
    ),  # fmt: skip
    _m("orders", "/orders"),
    Page("orders, page 2", "merchant", lambda s, _r: [f"{NEXT}{_store(s)}/orders"]),
    _m("orders to ship", "/orders?status=placed"),
    _m("orders pending approval", "/orders?status=pending_approval"),
    Page(
        "order detail", "merchant", lambda s, _r: [f"{_store(s)}/orders/{o}" for o in s.orders]
    ),  # fmt: skip
    _m("integrations", "/integrations"),
    _m("webhooks", "/webhooks"),
    Page(
        "webhook endpoint", "merchant", lambda s, _r: [f"{_store(s)}/webhooks/{s.endpoint_id}"]
    ),  # fmt: skip
    # shopper pages
    Page("my devices", "shopper", lambda _s, _r: ["/my/devices"]),
    Page("my orders", "shopper", lambda _s, _r: ["/my/orders"]),
    Page("my order", "shopper", lambda s, _r: [f"/my/orders/{o}" for o in s.my_orders]),
    Page("my addresses", "shopper", lambda _s, _r: ["/my/addresses"]),
    Page("my voice settings", "shopper", lambda _s, _r: ["/my/voice"]),
    Page("my privacy", "shopper", lambda _s, _r: ["/my/privacy"]),
    Page("my data export", "shopper", lambda _s, _r: ["/my/privacy/export.json"]),
    # the REST API's lists (and a get or two where a list links to it)
    _a("api orders", "/orders"),
    Page("api orders, page 2", "api", lambda _s, _r: [f"{NEXT}/api/v1/orders"]),
    _a("api orders to ship", "/orders?status=placed"),
    Page(
        "api orders of a device",
        "api",
        lambda s, r: [f"/api/v1/orders?device={d}" for d in _some_devices(s, r)],
    ),  # fmt: skip
    Page("api order", "api", lambda s, _r: [f"/api/v1/orders/{o}" for o in s.orders]),
    _a("api products", "/products"),
    Page(
        "api stock adjustments",
        "api",
        lambda s, _r: [f"/api/v1/products/{s.product_id}/stock-adjustments"],
    ),  # fmt: skip
    _a("api devices", "/devices"),
    Page("api devices, page 2", "api", lambda _s, _r: [f"{NEXT}/api/v1/devices"]),
    Page(
        "api devices by model",
        "api",
        lambda s, _r: [f"/api/v1/devices?model={s.appliance_model_id}"],
    ),  # fmt: skip
    _a("api devices low supply", "/devices?low_supply=true"),
    Page(
        "api device", "api", lambda s, r: [f"/api/v1/devices/{d}" for d in _some_devices(s, r)]
    ),  # fmt: skip
    _a("api device models", "/device-models"),
    _a("api webhook endpoints", "/webhook-endpoints"),
    Page(
        "api deliveries",
        "api",
        lambda s, _r: [f"/api/v1/webhook-endpoints/{s.endpoint_id}/deliveries"],
    ),  # fmt: skip
    _a("api events", "/events"),
    Page("api events, later", "api", lambda s, _r: [f"/api/v1/events?after=evt_{s.devices}"]),
]


def _next_url(reply: requests.Response) -> str | None:
    """The next page's URL: a page's rel="next" link, or the API's Link header."""
    link = reply.links.get("next", {}).get("url")
    if link:
        parts = urlsplit(str(link))
        return f"{parts.path}?{parts.query}" if parts.query else parts.path
    if reply.headers.get("content-type", "").startswith("application/json"):
        cursor = reply.json().get("next_cursor")  # lists without a Link header
        parts = urlsplit(reply.url)
        return f"{parts.path}?cursor={cursor}" if cursor else None
    found = re.search(r'rel="next" href="([^"]+)"', reply.text)
    return found.group(1).replace("&amp;", "&") if found else None


def _urls(
    base: str, clients: dict[str, requests.Session], seeded: Seeded, rng: random.Random,
    pages: list[Page],
) -> dict[str, list[str]]:  # fmt: skip
    urls: dict[str, list[str]] = {}
    for page in pages:
        http = clients[page.who]
        group = []
        for url in page.urls(seeded, rng):
            if url.startswith(NEXT):
                first = http.get(f"{base}{url[len(NEXT) :]}", timeout=60)
                following = _next_url(first)
                if following is None:
                    continue
                url = following
            group.append(url)
        urls[page.name] = group
        for url in group:  # warm-up: templates compiled, caches filled
            reply = http.get(f"{base}{url}", timeout=60)
            assert reply.status_code == 200, (url, reply.status_code, reply.text[:200])
    missing = [name for name, group in urls.items() if not group]
    if missing:
        print(f"nothing to time (no next page, no ids) for: {', '.join(missing)}", flush=True)
    return {name: group for name, group in urls.items() if group}


def _timed(http: requests.Session, url: str) -> float:
    start = time.perf_counter()
    reply = http.get(url, timeout=60)
    elapsed = time.perf_counter() - start
    assert reply.status_code == 200, url
    return elapsed


def clients(base: str, seeded: Seeded) -> dict[str, requests.Session]:
    """A session for each audience: the merchant, the shopper, the API client."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {seeded.api_token}"
    return {"merchant": sign_in(base), "shopper": sign_in(base, SHOPPER_EMAIL), "api": api}


def run(
    url: str | None, sizes: list[int], repeat: int, pages: list[Page] | None = None
) -> dict[int, dict[str, float]]:
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
            sessions = clients(base, seeded)
            targets.append((n, base, sessions, _urls(base, sessions, seeded, rng, pages or PAGES)))
        samples: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
        who = {page.name: page.who for page in pages or PAGES}
        names = [name for name in targets[0][3] if all(name in t[3] for t in targets)]
        for name in tqdm(names, desc="timing", leave=False):
            for i in range(repeat):
                for n, base, sessions, urls in targets:
                    group = urls[name]
                    took = _timed(sessions[who[name]], f"{base}{group[i % len(group)]}")
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
    parser.add_argument("--only", choices=("merchant", "shopper", "api"), help="one audience")
    args = parser.parse_args()
    chosen = [page for page in PAGES if args.only in (None, page.who)]
    results = run(args.url, [args.small, args.large], args.repeat, chosen)
    small, large = results[args.small], results[args.large]
    backend = (args.url or "sqlite").split(":")[0]
    table = Table(title=f"Pages and API lists, median of {args.repeat} requests, on {backend}")
    for column in ("page", f"{args.small:,} devices ms", f"{args.large:,} devices ms", "ratio"):
        table.add_column(column)
    for name in small:
        ratio = large[name] / small[name]
        table.add_row(name, f"{small[name]:.1f}", f"{large[name]:.1f}",
                      f"[{'green' if ratio <= 2 else 'red'}]{ratio:.2f}×[/]")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
