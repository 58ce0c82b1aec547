"""Webhooks delivered per second from the outbox beside a bare loop of signed POSTs, and the
lag from commit to delivery while hub presses run.

python -m bench.webhooks [--url DATABASE_URL] [--events N] [--presses N] [--window W]

Three processes besides this one: a loopback receiver (answers 204, notes when each
`webhook-id` arrived), the dispatcher (as `python -m restock worker` runs it), and, for the
lag phase, the CoAP hub from bench.hub. Phases:
  bare        this process POSTs N signed events in a loop (json, sign, POST), one at a time
  outbox      N order events already in the outbox; the dispatcher starts and delivers them
  lag         hub presses place orders (bench.hub's generator) while the dispatcher runs;
              lag = arrival at the receiver - the order's creation (its transaction's time)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cbor2
import requests
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from bench.common import HOME, percentile
from bench.hub import Target, build_fleet, drive, open_db, scratch, start_server, stop_servers


def receive(port: int, ready: Any, stop: Any, arrivals: Any, count: Any) -> None:
    """Receiver process: 204 to every POST; at the end, sends {webhook-id: arrival time}."""
    seen: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("content-length", "0")))
            seen.setdefault(self.headers["webhook-id"], time.time())
            with count.get_lock():
                count.value += 1
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.timeout = 0.2
    ready.set()
    while not stop.is_set():
        server.handle_request()
    server.server_close()
    arrivals.put(seen)


def dispatch(target: Target, ready: Any, go: Any, stop: Any, mark: Any, stats: Any) -> None:
    """Dispatcher process: built before the clock starts, runs from `go` until `stop`; at
    `mark`, sends its CPU seconds and SQL statements since `go`."""
    import resource
    import threading

    from sqlalchemy import event

    from orders.services.webhook_dispatch import Dispatcher

    db = open_db(target)
    statements = [0]

    def counted(*_args: Any) -> None:
        statements[0] += 1

    event.listen(db.engine, "before_cursor_execute", counted)
    dispatcher = Dispatcher(db, allow_private=True)
    ready.set()
    go.wait()

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    cpu_at_go, statements[0] = cpu(), 0
    thread = threading.Thread(target=dispatcher.run)
    thread.start()
    mark.wait()
    stats.put((cpu() - cpu_at_go, statements[0]))
    stop.wait()
    dispatcher.stop()
    thread.join()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bare_loop(url: str, secret: str, n: int) -> float:
    """Seconds for n signed POSTs, one after the other, over one keep-alive session."""
    session = requests.Session()
    signer = Webhook(secret)
    body = {"type": "order.placed", "data": {"id": "x" * 22, "status": "placed", "lines": []}}
    began = time.perf_counter()
    for i in range(n):
        now = datetime.now(UTC)
        payload = json.dumps({"id": f"evt_{i}", "created": now.isoformat(), **body}).encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": f"bare_{i}",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(f"bare_{i}", now, payload),
        }
        response = session.post(url, data=payload, headers=headers, timeout=(3, 10))
        response.raise_for_status()
    seconds = time.perf_counter() - began
    session.close()
    return seconds


def wait_count(count: Any, n: int, timeout: float = 600) -> float:
    """Block until the receiver has counted `n` POSTs; returns when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while count.value < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count.value} of {n} webhooks arrived")
        time.sleep(0.005)
    return time.perf_counter()


def main(argv: list[str] | None = None) -> None:
    """Run the phases and print the table."""
    from orders.services.ordering import LineRequest, OrderRequest, place_order
    from orders.services.webhooks import create_endpoint
    from orders.store.model import Address, OrderEvent, Shopper, Store

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="postgresql+psycopg://… (default: a temp SQLite file)")
    parser.add_argument("--events", type=int, default=2000, help="events per throughput phase")
    parser.add_argument("--presses", type=int, default=2000, help="hub presses in the lag phase")
    parser.add_argument("--window", type=int, default=16, help="presses in flight (lag phase)")
    args = parser.parse_args(argv)
    console = Console(width=120)
    spawn = multiprocessing.get_context("spawn")
    with scratch(args.url) as target:
        fleet = build_fleet(target, args.presses, 0)
        db = open_db(target)
        # The API orders go to a shopper of their own: an open order of a product holds it
        # for its household, so a device owner's presses would answer in_progress.
        with db.write() as session:
            store_id = session.scalar(select(Store.id))
            buyer = Shopper(name="api buyer")
            session.add(buyer)
            session.flush()
            session.add(Address(**HOME, shopper_id=buyer.id, is_default=True))
            shopper_id = buyer.id
        assert store_id is not None
        port = free_port()
        url = f"http://127.0.0.1:{port}/hooks"
        ready, stop, count = spawn.Event(), spawn.Event(), spawn.Value("l", 0)
        arrivals = spawn.Queue()
        receiver = spawn.Process(target=receive, args=(port, ready, stop, arrivals, count))
        receiver.start()
        ready.wait(30)
        secret = create_endpoint(db, store_id, url, ["order.placed"], allow_private=True).secret
        assert secret is not None

        console.print(f"bare loop: {args.events} signed POSTs…")
        bare_loop(url, secret, 100)  # warm-up: connections, imports
        bare_seconds = bare_loop(url, secret, args.events)

        console.print(f"outbox: writing {args.events} orders…")
        for _ in range(args.events):
            request = OrderRequest(store_id, shopper_id, "api", (LineRequest("PODS", 1),))
            place_order(db, request)
        d_ready, go, d_stop, mark = spawn.Event(), spawn.Event(), spawn.Event(), spawn.Event()
        stats = spawn.Queue()
        dispatcher = spawn.Process(target=dispatch, args=(target, d_ready, go, d_stop, mark, stats))
        dispatcher.start()
        d_ready.wait(60)
        before = count.value
        began = time.perf_counter()
        go.set()
        outbox_seconds = wait_count(count, before + args.events) - began
        mark.set()
        cpu_seconds, statements = stats.get(timeout=60)

        with db.read() as session:
            boundary = session.scalar(select(func.max(OrderEvent.id))) or 0
        console.print(f"lag: {args.presses} hub presses while the dispatcher runs…")
        hub = start_server("hub", target)
        payloads = [cbor2.dumps({"at": token, "seq": 1}) for token in fleet.buttons]
        press_seconds, _, errors = asyncio.run(
            drive(hub.port, "/press", payloads, args.window, "presses")
        )
        placed = args.presses - errors
        wait_count(count, before + args.events + placed)
        stop_servers([hub])
        d_stop.set()
        dispatcher.join(60)
        stop.set()
        seen: dict[str, float] = arrivals.get(timeout=60)
        receiver.join(30)
        with db.read() as session:
            created = {
                f"evt_{event_id}": at.timestamp()
                for event_id, at in session.execute(
                    select(OrderEvent.id, OrderEvent.created_at).where(OrderEvent.id > boundary)
                )
            }
        db.dispose()
    press_lags = sorted(seen[key] - at for key, at in created.items() if key in seen) or [0.0]
    backend = "PostgreSQL" if args.url else "SQLite"
    table = Table(title=f"Webhooks: outbox dispatcher vs bare signed POST loop ({backend})")
    for column in ("phase", "events", "events/s", "× bare"):
        table.add_column(column, justify="right")
    bare_rate = args.events / bare_seconds
    table.add_row("bare loop", str(args.events), f"{bare_rate:,.0f}", "1.00")
    outbox_rate = args.events / outbox_seconds
    table.add_row(
        "outbox", str(args.events), f"{outbox_rate:,.0f}", f"{outbox_rate / bare_rate:.2f}"
    )
    console.print(table)
    console.print(
        f"dispatcher, outbox phase: {cpu_seconds / args.events * 1e6:,.0f} µs CPU and "
        f"{statements / args.events:.2f} SQL statements per event"
    )
    console.print(
        f"lag commit → delivery during {placed} hub presses ({placed / press_seconds:,.0f}/s, "
        f"{errors} errors): p50 {percentile(press_lags, 50) * 1000:.0f} ms, "
        f"p99 {percentile(press_lags, 99) * 1000:.0f} ms"
    )
    console.print(f"host: {os.cpu_count()} CPUs; receiver, dispatcher and hub are processes")


if __name__ == "__main__":
    main()
