"""`python -m bench.hub --oscore`: OSCORE presses vs plain (bearer) presses vs bare aiocoap.

python -m bench.hub --oscore [--url DATABASE_URL] [--devices 10,10000] [--presses N]
                             [--window W] [--slices S]

For each fleet size: a hub process serving an OSCORE fleet and a bearer fleet of that many
linked buttons (each with an open order, so every press is answered `in_progress`), and a
bare aiocoap server with a constant reply. Slice by slice, the same number of presses goes
to bare aiocoap (plain), to the hub as bearer presses, and to the hub as OSCORE presses,
spread over every device of the fleet. The client protects each request itself with the
device's context (no per-request credential lookup on the client side).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import cbor2
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, select

from bench.common import HOME, percentile
from bench.hub import (
    PRESS_SCOPE,
    Target,
    cpu_seconds,
    open_db,
    scratch,
    start_server,
    stop_servers,
)

HUB_SENDER_ID = b"\x01"


@dataclass
class Fleet:
    """Bearer tokens of one fleet and the OSCORE keys (master secret, salt, hub id) of another."""

    bearer: list[str] = field(default_factory=list)
    oscore: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)


def build(target: Target, devices: int) -> Fleet:
    """Store, two models (bearer, OSCORE), `devices` linked buttons each, an open order each."""
    from auth.model import OscoreContext, Token
    from auth.tokens import token_hash
    from orders.services.catalog import add_product, create_device_model, create_store
    from orders.store.db import utcnow
    from orders.store.model import Address, Device, DeviceLink, Order, OrderLine, Product, Shopper

    db = open_db(target)
    now = utcnow()
    fleet = Fleet()
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench", currency="EUR")
        add_product(session, store, sku="PODS", name="Pods", price_minor=100, stock=10**9)
        models = {
            security: create_device_model(
                session, store, name=security, kind="button", skus=["PODS"], security=security
            )
            for security in ("bearer", "oscore")
        }
        product_id = session.scalar(select(Product.id).where(Product.sku == "PODS"))
        store_id = store.id
    for security, model in models.items():
        with db.write() as session:
            first = session.scalar(select(Shopper.id).order_by(Shopper.id.desc()).limit(1)) or 0
            session.execute(
                insert(Shopper), [{"name": f"s{i}", "created_at": now} for i in range(devices)]
            )
            shoppers = list(
                session.scalars(select(Shopper.id).where(Shopper.id > first).order_by(Shopper.id))
            )
            session.execute(
                insert(Address),
                [{**HOME, "shopper_id": s, "is_default": True, "created_at": now}
                 for s in shoppers],
            )  # fmt: skip
            session.execute(
                insert(Device),
                [{"store_id": store_id, "model_id": model.id, "serial": f"{security}{i}",
                  "created_at": now} for i in range(devices)],
            )  # fmt: skip
            device_ids = list(
                session.scalars(
                    select(Device.id).where(Device.model_id == model.id).order_by(Device.id)
                )
            )
            session.execute(
                insert(DeviceLink),
                [{"device_id": d, "shopper_id": s, "store_id": store_id,
                  "product_id": product_id, "quantity": 1, "status": "active",
                  "created_at": now} for d, s in zip(device_ids, shoppers, strict=True)],
            )  # fmt: skip
            links = dict(
                session.execute(
                    select(DeviceLink.device_id, DeviceLink.id).where(
                        DeviceLink.device_id.in_(device_ids)
                    )
                ).all()
            )
            # An open order each: every press of the run is answered `in_progress`.
            orders = [
                {"id": f"o{security}{d}", "store_id": store_id, "shopper_id": s,
                 "device_id": d, "link_id": links[d], "device_product_id": product_id,
                 "channel": "button", "status": "placed", "total_minor": 100,
                 "currency": "EUR", "created_at": now, "updated_at": now,
                 "cancel_until": now - timedelta(minutes=1)}
                for d, s in zip(device_ids, shoppers, strict=True)
            ]  # fmt: skip
            session.execute(insert(Order), orders)
            session.execute(
                insert(OrderLine),
                [{"order_id": o["id"], "product_id": product_id, "sku": "PODS", "name": "Pods",
                  "quantity": 1, "unit_price_minor": 100, "line_total_minor": 100}
                 for o in orders],
            )  # fmt: skip
            rows, contexts = [], []
            for i, (d, s) in enumerate(zip(device_ids, shoppers, strict=True)):
                secret = secrets.token_urlsafe(32)
                ms, salt = os.urandom(16), os.urandom(26)
                rows.append(
                    {"access_token_hash": token_hash(secret), "client_id": model.client_id,
                     "kind": "device", "scope": PRESS_SCOPE, "shopper_id": s,
                     "store_id": store_id, "device_id": d, "link_id": links[d],
                     "family": secrets.token_hex(8), "issued_at": now,
                     "expires_at": now.replace(year=now.year + 1),
                     **({"osc_ms": ms, "osc_salt": salt[:8], "osc_id": os.urandom(8)}
                        if security == "oscore" else {})}
                )  # fmt: skip
                if security == "bearer":
                    fleet.bearer.append(secret)
                else:
                    hub_id = i.to_bytes(4, "big")
                    fleet.oscore.append((ms, salt, hub_id))
                    contexts.append((token_hash(secret), hub_id, salt))
            session.execute(insert(Token), rows)
            if contexts:
                ids = dict(session.execute(select(Token.access_token_hash, Token.id)).all())
                session.execute(
                    insert(OscoreContext),
                    [{"token_id": ids[digest], "recipient_id": hub_id, "sender_id": HUB_SENDER_ID,
                      "master_salt": salt, "sender_seq_reserved": 0, "replay_floor": 0,
                      "created_at": now} for digest, hub_id, salt in contexts],
                )  # fmt: skip
    db.dispose()
    return fleet


@dataclass
class Run:
    """One kind of press against one server, summed over slices."""

    name: str
    n: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        """Presses per second."""
        return self.n / self.seconds if self.seconds else 0.0


async def drive(port: int, make: Any, count: int, window: int, run: Run) -> None:
    """`count` requests from `make(i)` with `window` client endpoints, one in flight each."""
    from aiocoap import Context

    contexts = [await Context.create_client_context(transports=["udp6"]) for _ in range(window)]
    counter = iter(range(count))

    async def worker(context: Any) -> None:
        for i in counter:
            request, check = make(i)
            request.set_request_uri(f"coap://127.0.0.1:{port}/press")
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(context.request(request).response, 60)
                ok = check(response)
            except Exception:
                ok = False
            run.latencies.append(time.perf_counter() - started)
            run.errors += 0 if ok else 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(context) for context in contexts))
    run.seconds += time.perf_counter() - began
    run.n += count
    for context in contexts:
        await context.shutdown()


class Presses:
    """Request makers for the three kinds; sequence numbers go on across slices."""

    def __init__(self, fleet: Fleet) -> None:
        from device_hub.oscore import DeviceSideContext

        self.fleet = fleet
        self.contexts = [
            DeviceSideContext(ms, salt, sender_id=hub_id, recipient_id=HUB_SENDER_ID)
            for ms, salt, hub_id in fleet.oscore
        ]
        self.seq = {kind: [1] * len(fleet.bearer) for kind in ("plain", "oscore")}
        self.turn = {"plain": 0, "oscore": 0}

    def _device(self, kind: str) -> int:
        device = self.turn[kind] % len(self.fleet.bearer)
        self.turn[kind] += 1
        self.seq[kind][device] += 1
        return device

    def plain(self, i: int) -> tuple[Any, Any]:
        """A bearer press (also what bare aiocoap gets)."""
        from aiocoap import POST, Message

        device = self._device("plain")
        body = cbor2.dumps({"at": self.fleet.bearer[device], "seq": self.seq["plain"][device]})
        message = Message(code=POST, payload=body, content_format=60)
        return message, lambda response: response.code.is_successful()

    def oscore(self, i: int) -> tuple[Any, Any]:
        """A press protected with the device's own context; the answer is unprotected."""
        from aiocoap import POST, Message
        from aiocoap.message import Direction

        device = self._device("oscore")
        context = self.contexts[device]
        inner = Message(
            code=POST, uri_path=("press",),
            payload=cbor2.dumps({"seq": self.seq["oscore"][device]}), content_format=60,
        )  # fmt: skip
        inner.direction = Direction.OUTGOING
        outer, request_id = context.protect(inner)

        def check(response: Any) -> bool:
            plain, _ = context.unprotect(response, request_id)
            return bool(plain.code.is_successful())

        return outer, check


def bench_one(target: Target, devices: int, presses: int, window: int, slices: int) -> list[Run]:
    """One fleet size: bare, plain hub, OSCORE hub, interleaved by slice."""
    fleet = build(target, devices)
    servers = {kind: start_server(kind, target) for kind in ("bare", "hub")}
    maker = Presses(fleet)
    runs = {name: Run(name) for name in ("bare aiocoap", "hub plain", "hub oscore")}
    plan = [
        ("bare aiocoap", "bare", maker.plain),
        ("hub plain", "hub", maker.plain),
        ("hub oscore", "hub", maker.oscore),
    ]
    try:
        # Warm-up: pools and plans; every device once, so the hub holds every context (a
        # device's first request after a hub starts reads its context: not the steady state).
        for name, kind, make in plan:
            asyncio.run(drive(servers[kind].port, make, devices, window, Run(name)))
        for _ in range(slices):
            for name, kind, make in plan:
                pid = servers[kind].process.pid
                before = cpu_seconds(pid)
                asyncio.run(drive(servers[kind].port, make, presses // slices, window, runs[name]))
                runs[name].cpu += cpu_seconds(pid) - before
    finally:
        stop_servers(list(servers.values()))
    return list(runs.values())


def main(args: Any) -> None:
    """Every fleet size in `args.devices`; one table with the ratios."""
    console = Console(width=150)
    backend = "PostgreSQL" if args.url else "SQLite"
    table = Table(
        title=f"OSCORE presses vs plain vs bare aiocoap ({backend}, window {args.window})"
    )
    for column in ("devices", "server", "presses", "req/s", "× bare", "× plain", "p50 ms",
                   "p99 ms", "CPU µs/req", "errors"):  # fmt: skip
        table.add_column(column, justify="right")
    sizes: Sequence[int] = [int(n) for n in args.devices.split(",")]
    for devices in sizes:
        with scratch(args.url) as target:
            console.print(f"{devices} devices per fleet: setting up…")
            runs = bench_one(target, devices, args.presses, args.window, args.slices)
        bare, plain = runs[0], runs[1]
        for run in runs:
            table.add_row(
                str(devices), run.name, str(run.n), f"{run.rate:,.0f}",
                f"{run.rate / bare.rate:.2f}", f"{run.rate / plain.rate:.2f}",
                f"{percentile(run.latencies, 50) * 1000:.1f}",
                f"{percentile(run.latencies, 99) * 1000:.1f}",
                f"{run.cpu / run.n * 1e6:,.0f}", str(run.errors),
            )  # fmt: skip
    console.print(table)
    console.print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()}")
