"""CoAP presses/s through the real hub beside a bare aiocoap server, same generator, same run.

python -m bench.hub [--url DATABASE_URL] [--place N] [--repeat N] [--telemetry N] [--window W]
                    [--slices S] [--hub-only] [--processes P]
python -m bench.hub --oscore [--devices 10,10000] [--presses N]   (see bench/hub_oscore.py)

Each server runs in its own process (RSS and CPU time read from /proc, the same way for
both); this process is the client: `--window` client endpoints, each with one request in
flight (see drive()). Both servers are warmed up, then every phase is cut into `--slices`
parts that go to the bare server and the hub in turn (see run_servers()). Phases:
  place     presses that each place an order (one fresh device per press)
  repeat    presses from devices whose order is still open (answered in_progress)
  telemetry SenML level reports above the reorder point (stored, action none)
The bare server answers every request with one constant CBOR reply. It is plain aiocoap,
so its RSS also shows aiocoap's unbounded duplicate-detection memory (issue #183).

`--processes 2`: a third server joins the turns, two hub processes bound to one UDP port
(SO_REUSEPORT, as `python -m restock hub` twice; the kernel spreads the client endpoints
over them by address), with its own devices, so its presses place orders too; the table
adds each phase's rate against the one-process hub. CPU and RSS are the processes' sum.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import cbor2
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, insert, select, text
from tqdm import tqdm

from bench.common import HOME, percentile

PRESS_SCOPE = "orders:place orders:read devices:telemetry"
CHUNK = 30_000  # requests per client endpoint before it is replaced (see drive())


@dataclass(frozen=True)
class Target:
    """Where the database lives, in a form a spawned process can reopen."""

    url: str
    schema: str | None


@contextmanager
def scratch(url: str | None) -> Iterator[Target]:
    """A migrated throwaway database: a temp SQLite file or a temp PostgreSQL schema."""
    from orders.store.db import make_engine
    from restock.migrate import upgrade

    url = url or "sqlite"
    if url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            target = Target(f"sqlite:///{Path(tmp) / 'bench.db'}", None)
            engine = make_engine(target.url)
            upgrade(engine)
            engine.dispose()
            yield target
        return
    schema = f"restock_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        upgrade(engine)
        engine.dispose()
        yield Target(url, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def open_db(target: Target) -> Any:
    """A Database over `target`."""
    from orders.store.db import Database, make_engine

    kwargs: dict[str, Any] = {}
    if target.schema:
        kwargs["connect_args"] = {"options": f"-csearch_path={target.schema}"}
    return Database(make_engine(target.url, **kwargs))


@dataclass(frozen=True)
class Fleet:
    """Access tokens of linked devices: buttons that will place, appliances that report."""

    buttons: list[str]
    appliances: list[str]


def build_fleet(target: Target, buttons: int, appliances: int) -> Fleet:
    """Store, products and linked devices with tokens, inserted in bulk (setup is not timed)."""
    from auth.model import Token
    from auth.tokens import token_hash
    from orders.services.catalog import SlotSpec, add_product, create_device_model, create_store
    from orders.store.db import utcnow
    from orders.store.model import Address, Device, DeviceLink, Product, Shopper

    db = open_db(target)
    now = utcnow()
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench", currency="EUR")
        add_product(session, store, sku="PODS", name="Pods", price_minor=100, stock=10**9)
        button = create_device_model(
            session, store, name="B", kind="button", skus=["PODS"], security="bearer"
        )
        machine = create_device_model(
            session, store, name="M", kind="appliance",
            slots=[SlotSpec("pods", "count", 50, "PODS", 50)], security="bearer",
        )  # fmt: skip
        product_id = session.scalar(select(Product.id).where(Product.sku == "PODS"))
        ids = dict(store=store.id, button=button.id, machine=machine.id, client=button.client_id)
    tokens: dict[str, list[str]] = {"button": [], "machine": []}
    total = buttons + appliances
    with db.write() as session:
        # One shopper per device: orders of one shopper serialise on its row lock, and a
        # fleet of homes is many shoppers.
        session.execute(
            insert(Shopper), [{"name": f"s{i}", "created_at": now} for i in range(total)]
        )
        shopper_ids = list(session.scalars(select(Shopper.id).order_by(Shopper.id)))
        session.execute(
            insert(Address),
            [{**HOME, "shopper_id": s, "is_default": True, "created_at": now} for s in shopper_ids],
        )
        rows = [
            {"store_id": ids["store"], "model_id": ids["button" if i < buttons else "machine"],
             "serial": f"D{i}", "created_at": now}
            for i in range(total)
        ]  # fmt: skip
        session.execute(insert(Device), rows)
        device_ids = list(session.scalars(select(Device.id).order_by(Device.id)))
        session.execute(
            insert(DeviceLink),
            [
                {"device_id": d, "shopper_id": s, "store_id": ids["store"],
                 "product_id": product_id, "quantity": 1, "reorder_point": 5.0,
                 "status": "active", "created_at": now}
                for d, s in zip(device_ids, shopper_ids, strict=True)
            ],
        )  # fmt: skip
        links = {
            row[0]: row[1] for row in session.execute(select(DeviceLink.device_id, DeviceLink.id))
        }
        token_rows = []
        for i, (device_id, shopper_id) in enumerate(zip(device_ids, shopper_ids, strict=True)):
            secret = secrets.token_urlsafe(32)
            tokens["button" if i < buttons else "machine"].append(secret)
            token_rows.append(
                {"access_token_hash": token_hash(secret), "client_id": ids["client"],
                 "kind": "device", "scope": PRESS_SCOPE, "shopper_id": shopper_id,
                 "store_id": ids["store"], "device_id": device_id, "link_id": links[device_id],
                 "family": secrets.token_hex(8), "issued_at": now,
                 "expires_at": now.replace(year=now.year + 1)}
            )  # fmt: skip
        session.execute(insert(Token), token_rows)
    db.dispose()
    return Fleet(tokens["button"], tokens["machine"])


def seed_history(target: Target, per_device: int) -> int:
    """Past orders for every device (delivered, with line, event and press), then ANALYZE.

    A running store has history, and its tables have statistics. Without both, every plan
    the hub's connections cache is made for empty tables and kept for the whole run (a
    run is shorter than autovacuum's first look), e.g. a sequential scan of the presses
    table that grows with every press. Returns the number of orders written.
    """
    from orders.store.db import utcnow
    from orders.store.model import Base, DeviceLink, Order, OrderEvent, OrderLine, Press, Product

    db = open_db(target)
    long_ago = utcnow() - timedelta(days=40)  # last month's: no cap counts them
    with db.write() as session:
        links = session.execute(
            select(DeviceLink.id, DeviceLink.device_id, DeviceLink.shopper_id,
                   DeviceLink.store_id, Product.id, Product.sku, Product.name)
            .join(Product, Product.id == DeviceLink.product_id)
        ).all()  # fmt: skip
        orders, lines, events, presses = [], [], [], []
        for link_id, device_id, shopper_id, store_id, product_id, sku, name in links:
            for n in range(per_device):
                order_id = f"h{link_id}x{n}"
                orders.append(
                    {"id": order_id, "store_id": store_id, "shopper_id": shopper_id,
                     "device_id": device_id, "link_id": link_id, "device_product_id": product_id,
                     "channel": "button", "status": "delivered", "total_minor": 100,
                     "currency": "EUR", "created_at": long_ago, "updated_at": long_ago,
                     "cancel_until": long_ago, "delivered_at": long_ago}
                )  # fmt: skip
                lines.append(
                    {"order_id": order_id, "product_id": product_id, "sku": sku, "name": name,
                     "quantity": 1, "unit_price_minor": 100, "line_total_minor": 100}
                )  # fmt: skip
                events.append(
                    {"order_id": order_id, "store_id": store_id, "type": "order.created",
                     "status": "placed", "data": {}, "created_at": long_ago,
                     "published_at": long_ago}
                )  # fmt: skip
                presses.append(
                    {"device_id": device_id, "link_id": link_id, "boot": "before", "seq": n,
                     "result": "placed", "order_id": order_id, "created_at": long_ago}
                )  # fmt: skip
        for model, rows in ((Order, orders), (OrderLine, lines), (OrderEvent, events),
                            (Press, presses)):  # fmt: skip
            if rows:
                session.execute(insert(model), rows)
    with db.engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            conn.execute(text(f'ANALYZE "{table.name}"'))
    db.dispose()
    return len(orders)


def serve(kind: str, target: Target, port: int, ready: Any, stop: Any) -> None:
    """Server process: the hub, or a bare aiocoap server with a constant reply."""
    from aiocoap import Context, Message
    from aiocoap.numbers.codes import Code
    from aiocoap.resource import Resource, Site

    async def main() -> None:
        if kind == "hub":
            from device_hub.limits import Rate
            from device_hub.server import Hub, HubConfig
            from restock.server import freeze_startup_heap

            if os.environ.get("RESTOCK_METRICS_TOKEN"):
                from restock.metrics import install

                install()  # as the roles do with metrics on: every count goes to Prometheus
            unlimited = Rate(per_second=1e9, burst=1e9)
            hub = Hub(
                open_db(target),
                HubConfig(
                    port=port,
                    mdns=False,
                    device_rate=unlimited,
                    source_rate=unlimited,
                    workers=int(os.environ.get("BENCH_HUB_WORKERS", "0")) or None,
                    press_writers=int(os.environ.get("BENCH_HUB_WRITERS", "1")),
                ),
            )
            await hub.start()
            freeze_startup_heap()  # as `python -m restock run` and `hub` do once serving
            stopper = hub.stop
        else:
            reply = cbor2.dumps({"result": "in_progress", "order": {"id": "x" * 22}})

            class Constant(Resource):
                async def render_post(self, request: Message) -> Message:
                    return Message(code=Code.CREATED, payload=reply, content_format=60)

            site = Site()
            site.add_resource(["press"], Constant())
            site.add_resource(["telemetry"], Constant())
            context = await Context.create_server_context(
                site, bind=("127.0.0.1", port), transports=["udp6"]
            )
            stopper = context.shutdown
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await stopper()

    asyncio.run(main())


def rss_kib(pid: int) -> int:
    """Resident set size of `pid` in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    """One phase against one server."""

    server: str
    phase: str
    n: int
    seconds: float
    latencies: list[float]
    errors: int
    rss_growth_kib: int
    rss_samples_kib: list[int]
    cpu_seconds: float

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.n / self.seconds


async def drive(
    port: int,
    path: str,
    payloads: Sequence[bytes],
    window: int,
    label: str,
) -> tuple[float, list[float], int]:
    """Send every payload with `window` requests in flight; returns time, latencies, errors.

    In flight means at the server: aiocoap's client keeps one confirmable exchange per
    remote endpoint outstanding and queues the rest (NSTART = 1, RFC 7252 §4.7), so one
    client endpoint with 32 requests "in flight" sends them one after the other. Each of
    the `window` workers is therefore its own endpoint (its own UDP port), as `window`
    devices pressing at once would be.
    """
    from aiocoap import POST, Context, Message

    uri = f"coap://127.0.0.1:{port}{path}"
    latencies: list[float] = []
    errors = 0
    progress = tqdm(total=len(payloads), desc=label, unit="req", leave=False, disable=None)
    queue = iter(payloads)

    async def worker(context: Context) -> Context:
        nonlocal errors
        used = 0
        for payload in queue:
            if used == CHUNK:
                # Message ids are 16 bits and must not repeat within EXCHANGE_LIFETIME
                # (247 s): past that many requests an endpoint would collide with itself
                # and get stale answers from the server's duplicate detection.
                await context.shutdown()
                context = await Context.create_client_context(transports=["udp6"])
                used = 0
            used += 1
            started = time.perf_counter()
            request = Message(code=POST, uri=uri, payload=payload, content_format=60)
            try:
                response = await asyncio.wait_for(context.request(request).response, 120)
            except Exception:  # a lost exchange counts as an error, the run goes on
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            if not response.code.is_successful():
                errors += 1
            progress.update()
        return context

    # Endpoints are opened before the clock starts and closed after it stops: client setup.
    contexts = [await Context.create_client_context(transports=["udp6"]) for _ in range(window)]
    began = time.perf_counter()
    contexts = await asyncio.gather(*(worker(context) for context in contexts))
    elapsed = time.perf_counter() - began
    for context in contexts:
        await context.shutdown()
    progress.close()
    return elapsed, latencies, errors


def split(fleet: Fleet, groups: int) -> list[Fleet]:
    """The fleet cut into `groups` fleets of as many devices each."""
    b, a = len(fleet.buttons) // groups, len(fleet.appliances) // groups
    return [
        Fleet(fleet.buttons[g * b : (g + 1) * b], fleet.appliances[g * a : (g + 1) * a])
        for g in range(groups)
    ]


def phases(
    fleet: Fleet, place: int, repeat: int, telemetry: int
) -> list[tuple[str, str, list[bytes]]]:
    """The generator: identical payloads for both servers."""
    pressers = fleet.buttons[:place]
    return [
        ("place", "/press", [cbor2.dumps({"at": t, "seq": 1}) for t in pressers]),
        (
            "repeat",
            "/press",
            [
                cbor2.dumps({"at": pressers[i % len(pressers)], "seq": 2 + i // len(pressers)})
                for i in range(repeat)
            ],
        ),
        (
            "telemetry",
            "/telemetry",
            [
                cbor2.dumps(
                    {
                        "at": fleet.appliances[i % len(fleet.appliances)],
                        "senml": [{0: "pods", 1: "count", 2: 40 - (i % 30)}],
                    }
                )
                for i in range(telemetry)
            ],  # fmt: skip
        ),
    ]


@dataclass
class Server:
    """One server under test: one process, or several sharing one port."""

    kind: str
    processes: list[Any]
    port: int
    stop: Any

    @property
    def pids(self) -> list[int]:
        """The server's process ids."""
        return [process.pid for process in self.processes]

    def cpu_seconds(self) -> float:
        """CPU time of all its processes so far."""
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_kib(self) -> int:
        """Resident set size of all its processes."""
        return sum(rss_kib(pid) for pid in self.pids)


def start_server(kind: str, target: Target, processes: int = 1, label: str | None = None) -> Server:
    """Spawn a server (the hub, or bare aiocoap) as `processes` processes on one port (each
    binds it with SO_REUSEPORT, as aiocoap's UDP server does), and wait until all listen."""
    spawn = multiprocessing.get_context("spawn")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = spawn.Event()
    started = []
    for _ in range(processes):
        ready = spawn.Event()
        process = spawn.Process(target=serve, args=(kind, target, port, ready, stop), daemon=True)
        process.start()
        if os.environ.get("BENCH_PRINT_PID"):
            print(f"{kind} server pid {process.pid}", flush=True)
        if not ready.wait(60):
            process.kill()
            raise RuntimeError(f"{kind} server did not start")
        started.append(process)
    return Server(label or kind, started, port, stop)


Work = list[tuple[str, str, list[bytes]]]


def run_servers(
    servers: list[Server],
    work: Work | dict[str, Work],
    window: int,
    slices: int,
) -> dict[str, list[Result]]:
    """Every phase against every server, interleaved slice by slice.

    This host is shared and its load drifts; run one server after the other and the drift
    lands in the ratio. So each phase is cut into `slices` parts, and each part goes to
    every server in turn (same payloads, or each server's own devices, same window): all
    meet the same weather.
    """
    mine = {s.kind: work[s.kind] if isinstance(work, dict) else work for s in servers}
    results: dict[str, list[Result]] = {server.kind: [] for server in servers}
    for server in servers:  # warm up: imports, pools, first connections, prepared plans
        warm = mine[server.kind][2]
        for _ in server.processes:  # the kernel spreads endpoints: reach every process
            asyncio.run(drive(server.port, warm[1], warm[2][:200], window,
                              f"{server.kind} warm-up"))  # fmt: skip
    for number, (phase, path, payloads) in enumerate(mine[servers[0].kind]):
        size = -(-len(payloads) // slices)
        parts = {
            kind: [own[number][2][i : i + size] for i in range(0, len(own[number][2]), size)]
            for kind, own in mine.items()
        }
        runs = {s.kind: Result(s.kind, phase, 0, 0.0, [], 0, 0, [], 0.0) for s in servers}
        rss_before = {server.kind: server.rss_kib() for server in servers}
        for turn in range(len(parts[servers[0].kind])):
            for server in servers:
                part = parts[server.kind][turn]
                run = runs[server.kind]
                cpu_before = server.cpu_seconds()
                seconds, latencies, errors = asyncio.run(
                    drive(server.port, path, part, window, f"{server.kind} {phase}")
                )
                run.n += len(part)
                run.seconds += seconds
                run.latencies += latencies
                run.errors += errors
                run.cpu_seconds += server.cpu_seconds() - cpu_before
                run.rss_samples_kib.append(server.rss_kib() - rss_before[server.kind])
        for server in servers:
            run = runs[server.kind]
            run.rss_growth_kib = server.rss_kib() - rss_before[server.kind]
            results[server.kind].append(run)
    return results


def stop_servers(servers: list[Server]) -> None:
    """Ask every server to stop, and wait for it."""
    for server in servers:
        server.stop.set()
    for server in servers:
        for process in server.processes:
            process.join(30)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="postgresql+psycopg://… (default: a temp SQLite file)")
    parser.add_argument("--place", type=int, default=5000, help="presses that place an order")
    parser.add_argument("--repeat", type=int, default=10000, help="presses answered in_progress")
    parser.add_argument("--telemetry", type=int, default=5000, help="telemetry reports")
    parser.add_argument("--window", type=int, default=32, help="requests in flight")
    parser.add_argument("--slices", type=int, default=8, help="turns per phase (see run_servers)")
    parser.add_argument(
        "--history", type=int, default=3,
        help="past orders per device, seeded before the run (0: empty tables, no ANALYZE)",
    )  # fmt: skip
    parser.add_argument("--hub-only", action="store_true", help="skip the bare server (profiling)")
    parser.add_argument(
        "--processes", type=int, default=1, choices=(1, 2, 3, 4),
        help="above 1: also that many hub processes on one port, against one (see above)",
    )  # fmt: skip
    parser.add_argument(
        "--oscore", action="store_true",
        help="OSCORE presses vs plain presses vs bare aiocoap (bench/hub_oscore.py)",
    )  # fmt: skip
    parser.add_argument("--devices", default="10,10000", help="--oscore: fleet sizes")
    parser.add_argument("--presses", type=int, default=8000, help="--oscore: presses per kind")
    args = parser.parse_args(argv)
    if args.oscore:
        from bench import hub_oscore

        hub_oscore.main(args)
        return
    console = Console(width=150)
    with scratch(args.url) as target:
        groups = 1 if args.processes == 1 else 2
        console.print(f"setting up {args.place * groups} buttons, {500 * groups} appliances…")
        fleet = build_fleet(target, args.place * groups, 500 * groups)
        if args.history:
            seeded = seed_history(target, args.history)
            console.print(f"seeded {seeded} past orders ({args.history} per device), analyzed")
        own = [
            phases(part, args.place, args.repeat, args.telemetry) for part in split(fleet, groups)
        ]
        kinds = ["hub"] if args.hub_only else ["bare", "hub"]
        servers = [start_server(kind, target) for kind in kinds]
        work: Work | dict[str, Work] = own[0]
        many = f"hub×{args.processes}"
        if groups == 2:
            servers.append(start_server("hub", target, args.processes, label=many))
            work = {"bare": own[0], "hub": own[0], many: own[1]}
        # The load generator's own full collections (its payloads and endpoints are ~100k
        # objects) paused every request in flight alike, 35 ms every two seconds: noise in
        # both servers' p99. Frozen, as the hub freezes its startup heap.
        gc.collect()
        gc.freeze()
        try:
            results = run_servers(servers, work, args.window, args.slices)
        finally:
            stop_servers(servers)
    bare, hub = results.get("bare", []), results["hub"]
    if groups == 2:
        scaled = Table(title=f"{args.processes} hub processes on one port vs one (same run)")
        for column in ("phase", "hub req/s", f"{many} req/s", "ratio", "hub CPU µs/req",
                       f"{many} CPU µs/req", "errors"):  # fmt: skip
            scaled.add_column(column, justify="right")
        for one, several in zip(hub, results[many], strict=True):
            scaled.add_row(one.phase, f"{one.rate:,.0f}", f"{several.rate:,.0f}",
                           f"{several.rate / one.rate:.2f}",
                           f"{one.cpu_seconds / one.n * 1e6:,.0f}",
                           f"{several.cpu_seconds / several.n * 1e6:,.0f}",
                           f"{one.errors}/{several.errors}")  # fmt: skip
        console.print(scaled)
        console.print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.hub_only:
        for result in hub:
            console.print(
                f"{result.phase}: {result.rate:,.0f} req/s, "
                f"{result.cpu_seconds / result.n * 1e6:,.0f} µs CPU/req, errors {result.errors}"
            )
        return
    backend = "PostgreSQL" if args.url else "SQLite"
    table = Table(title=f"CoAP hub vs bare aiocoap ({backend}, window {args.window})")
    for column in ("phase", "server", "requests", "req/s", "× bare", "p50 ms", "p99 ms",
                   "p99 × bare", "CPU µs/req", "errors", "RSS growth MiB"):  # fmt: skip
        table.add_column(column, justify="right")
    for base, ours in zip(bare, hub, strict=True):
        for result in (base, ours):
            table.add_row(
                result.phase,
                result.server,
                str(result.n),
                f"{result.rate:,.0f}",
                f"{result.rate / base.rate:.2f}",
                f"{percentile(result.latencies, 50) * 1000:.1f}",
                f"{percentile(result.latencies, 99) * 1000:.1f}",
                f"{percentile(result.latencies, 99) / percentile(base.latencies, 99):.2f}",
                f"{result.cpu_seconds / result.n * 1e6:,.0f}",
                str(result.errors),
                f"{result.rss_growth_kib / 1024:.1f}",
            )
    console.print(table)
    for result in bare + hub:
        growth = ", ".join(f"{kib / 1024:.0f}" for kib in result.rss_samples_kib)
        console.print(f"RSS growth MiB after each slice, {result.server} {result.phase}: {growth}")
    console.print(f"host: {os.cpu_count()} CPUs; client and server are separate processes")


if __name__ == "__main__":
    main()
