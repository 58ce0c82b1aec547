"""A soak: presses and telemetry from a fleet of simulated devices at a daily rhythm
compressed in time, while the merchant's web pages and REST API are used, for minutes.

python -m bench.soak [--devices 10000] [--minutes 10] [--url DATABASE_URL] [--day-seconds 120]
                     [--presses-per-day 0.5] [--reports-per-day 6] [--window 16]

Processes: the CoAP hub, the web (waitress, as `python -m restock web` serves it), the outbox
worker (webhooks to a loopback receiver, a fourth process), and this one, the load: half the
devices are buttons, half coffee machines reporting a falling pod count (they order when it
is low). A day lasts `--day-seconds`; requests follow a day's curve (quiet at night, a peak
in the evening). Every few seconds a merchant client ships and delivers the placed orders
through the API (so devices can order again) and reads a few pages.

Reported: RSS of every process over time (growth after the first fifth, the warm-up, should
be flat), error answers (CoAP not 2.xx, HTTP 5xx, time-outs), the outbox lag (oldest event
or due delivery not yet sent), and a plot of all three in var/soak-<time>.png.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cbor2
import requests
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from bench.hub import (
    Fleet,
    Target,
    build_fleet,
    open_db,
    rss_kib,
    scratch,
    start_server,
    stop_servers,
)
from bench.webhooks import free_port, receive

PASSWORD = "soak password 1234"
MERCHANT = "merchant@soak.test"
SAMPLE_EVERY = 2.0  # seconds between samples of RSS and lag
MERCHANT_EVERY = 3.0  # seconds between the merchant client's rounds


def day_curve(t: float, day: float) -> float:
    """How busy the homes are at time `t` (mean 1 over a day): low at night, high at 19:00."""
    hour = (t / day * 24.0) % 24.0
    return 1.0 + 0.8 * math.sin((hour - 13.0) / 24.0 * 2 * math.pi)


def web(target: Target, port_out: Any, stop: Any) -> None:
    """Web process: the app on waitress until `stop`."""
    import secrets

    from restock.app import create_app
    from restock.server import web_in_thread
    from restock.settings import Settings

    db = open_db(target)
    settings = Settings(database_url=target.url, secret_key=secrets.token_urlsafe(32),
                        mdns=False, rate_limits=False)  # fmt: skip
    with web_in_thread(create_app(settings, db), threads=4) as base:
        port_out.put(base)
        stop.wait()


def worker(target: Target, ready: Any, stop: Any) -> None:
    """Outbox worker process: the webhook dispatcher until `stop`."""
    from orders.services.webhook_dispatch import Dispatcher

    dispatcher = Dispatcher(open_db(target), allow_private=True)
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    ready.set()
    stop.wait()
    dispatcher.stop()
    thread.join(30)


@dataclass
class Tally:
    """What the load saw."""

    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # "press 2.01", "http 500", …
    errors: int = 0

    def error(self, what: str) -> None:
        """Count an error answer (or none at all)."""
        self.errors += 1
        self.answers[what] += 1


async def load(
    fleet: Fleet, port: int, args: argparse.Namespace, tally: Tally, until: float
) -> None:
    """Presses and telemetry along the day's curve until `until` (perf_counter)."""
    from aiocoap import POST, Context, Message

    rng = random.Random(7)
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(maxsize=args.window * 64)
    seqs = [0] * len(fleet.buttons)
    levels = [rng.uniform(10, 50) for _ in fleet.appliances]
    day = args.day_seconds
    press_rate = len(fleet.buttons) * args.presses_per_day / day
    report_rate = len(fleet.appliances) * args.reports_per_day / day

    async def send(context: Context) -> None:
        while (item := await queue.get()) is not None:
            path, payload = item
            tally.sent[path] += 1
            request = Message(code=POST, uri=f"coap://127.0.0.1:{port}{path}", payload=payload,
                              content_format=60)  # fmt: skip
            try:
                response = await asyncio.wait_for(context.request(request).response, 30)
            except Exception:
                tally.error(f"{path} no answer")
                continue
            code = f"{path} {response.code.dotted}"
            if response.code.is_successful():
                tally.answers[code] += 1
            else:
                tally.error(code)

    contexts = [await Context.create_client_context(transports=["udp6"])
                for _ in range(args.window)]  # fmt: skip
    senders = [asyncio.create_task(send(context)) for context in contexts]
    began = time.perf_counter()
    owed = {"/press": 0.0, "/telemetry": 0.0}
    tick = 0.05
    while (now := time.perf_counter()) < until:
        busy = day_curve(now - began, day)
        owed["/press"] += press_rate * busy * tick
        owed["/telemetry"] += report_rate * busy * tick
        while owed["/press"] >= 1:
            owed["/press"] -= 1
            i = rng.randrange(len(fleet.buttons))
            seqs[i] += 1
            await queue.put(("/press", cbor2.dumps({"at": fleet.buttons[i], "seq": seqs[i]})))
        while owed["/telemetry"] >= 1:
            owed["/telemetry"] -= 1
            i = rng.randrange(len(fleet.appliances))
            # Pods run down a few at a report; a refill (a delivered order) tops them up.
            levels[i] = max(0.0, levels[i] - rng.uniform(0, 6)) if levels[i] > 3 else 50.0
            record = {0: "pods", 1: "count", 2: round(levels[i], 1)}
            await queue.put(("/telemetry", cbor2.dumps({"at": fleet.appliances[i],
                                                        "senml": [record]})))  # fmt: skip
        await asyncio.sleep(max(0.0, tick - (time.perf_counter() - now)))
    for _ in senders:
        await queue.put(None)
    await asyncio.gather(*senders)
    for context in contexts:
        await context.shutdown()


def merchant_rounds(
    base: str, token: str, store_id: int, tally: Tally, stop: threading.Event
) -> None:
    """The merchant: ships and delivers placed orders over the API, reads a few pages."""
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    pages = requests.Session()
    login = pages.get(f"{base}/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login)
    assert csrf is not None
    pages.post(f"{base}/login", data={"email": MERCHANT, "password": PASSWORD,
                                      "csrf_token": csrf.group(1)}, timeout=30)  # fmt: skip

    def call(session: requests.Session, method: str, path: str, **kwargs: Any) -> Any:
        tally.sent["http"] += 1
        try:
            reply = session.request(method, f"{base}{path}", timeout=30, **kwargs)
        except requests.RequestException:
            tally.error("http no answer")
            return None
        if reply.status_code >= 500:
            tally.error(f"http {reply.status_code}")
        else:
            tally.answers[f"http {reply.status_code // 100}xx"] += 1
        return reply

    while not stop.wait(MERCHANT_EVERY):
        listed = call(api, "GET", "/api/v1/orders?status=placed&limit=100")
        for order in listed.json()["orders"] if listed is not None and listed.ok else []:
            shipment = {"carrier": "DHL", "tracking_number": order["id"][:12]}
            shipped = call(api, "POST", f"/api/v1/orders/{order['id']}/ship", json=shipment)
            if shipped is not None and shipped.ok:
                call(api, "POST", f"/api/v1/orders/{order['id']}/deliver")
        for path in ("/devices", "/orders", "/devices?low=1", "/"):
            call(pages, "GET", f"/stores/{store_id}{path}")
        call(api, "GET", "/api/v1/devices?low_supply=true")


@dataclass
class Samples:
    """RSS per process (MiB) and the outbox lag (s) over time (s since the start)."""

    times: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)


def sample_loop(pids: dict[str, int], target: Target, count: Any, samples: Samples,
                began: float, stop: threading.Event) -> None:  # fmt: skip
    """Sample RSS of every process and the outbox lag until `stop`."""
    from orders.store.db import utcnow
    from orders.store.webhook_queue import outbox_lag

    db = open_db(target)
    while True:
        samples.times.append(time.perf_counter() - began)
        for name, pid in pids.items():
            samples.rss.setdefault(name, []).append(rss_kib(pid) / 1024)
        with db.read() as session:
            samples.lag.append(outbox_lag(session, utcnow()))
        samples.delivered.append(count.value)
        if stop.wait(SAMPLE_EVERY):
            break
    db.dispose()


def plot(samples: Samples, path: Path, title: str) -> None:
    """RSS per process, and the outbox lag, against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, values in samples.rss.items():
        top.plot(samples.times, values, label=name)
    top.set_ylabel("RSS (MiB)")
    top.legend(loc="upper left")
    top.set_title(title)
    bottom.plot(samples.times, samples.lag, color="tab:red")
    bottom.set_ylabel("outbox lag (s)")
    bottom.set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def setup_store(target: Target, receiver_url: str) -> tuple[int, str]:
    """The merchant's account, an API token and a webhook endpoint; returns store id, token."""
    from sqlalchemy import select

    from auth.accounts import create_account
    from auth.principal import MERCHANT_API_SCOPES
    from auth.tokens import issue_token
    from orders.services.webhooks import create_endpoint
    from orders.store.model import Store

    db = open_db(target)
    with db.write() as session:
        store_id = session.scalar(select(Store.id))
        assert store_id is not None
        create_account(session, email=MERCHANT, password=PASSWORD, store_id=store_id)
        scope = " ".join(MERCHANT_API_SCOPES)
        token = issue_token(session, client_id="soak-api", kind="merchant", store_id=store_id,
                            scope=scope, with_refresh=False).access_token  # fmt: skip
    create_endpoint(db, store_id, receiver_url, None, allow_private=True)
    db.dispose()
    return store_id, token


@dataclass(frozen=True)
class Outcome:
    """What a soak saw, and where its plot is."""

    tally: Tally
    samples: Samples
    plot: Path


def main(argv: list[str] | None = None) -> Outcome:
    """Run the soak and report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="postgresql+psycopg://… (default: a temp SQLite file)")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--day-seconds", type=float, default=120.0, help="one compressed day")
    parser.add_argument("--presses-per-day", type=float, default=0.5, help="per button")
    parser.add_argument("--reports-per-day", type=float, default=6.0, help="per appliance")
    parser.add_argument("--window", type=int, default=16, help="CoAP requests in flight")
    parser.add_argument("--out", default="var", help="where the plot goes")
    args = parser.parse_args(argv)
    console = Console(width=120)
    spawn = multiprocessing.get_context("spawn")
    seconds = args.minutes * 60
    with scratch(args.url) as target:
        buttons = args.devices // 2
        console.print(f"setting up {buttons} buttons and {args.devices - buttons} appliances…")
        fleet = build_fleet(target, buttons, args.devices - buttons)
        port = free_port()
        r_ready, r_stop, count = spawn.Event(), spawn.Event(), spawn.Value("l", 0)
        arrivals = spawn.Queue()
        receiver = spawn.Process(target=receive, args=(port, r_ready, r_stop, arrivals, count))
        receiver.start()
        r_ready.wait(30)
        store_id, token = setup_store(target, f"http://127.0.0.1:{port}/hooks")
        hub = start_server("hub", target)
        w_port, w_stop = spawn.Queue(), spawn.Event()
        web_process = spawn.Process(target=web, args=(target, w_port, w_stop))
        web_process.start()
        base = w_port.get(timeout=60)
        d_ready, d_stop = spawn.Event(), spawn.Event()
        worker_process = spawn.Process(target=worker, args=(target, d_ready, d_stop))
        worker_process.start()
        d_ready.wait(60)
        pids = {"hub": hub.pids[0], "web": web_process.pid, "worker": worker_process.pid,
                "receiver": receiver.pid, "load": os.getpid()}  # fmt: skip
        tally, samples, stop = Tally(), Samples(), threading.Event()
        began = time.perf_counter()
        threads = [
            threading.Thread(target=sample_loop,
                             args=(pids, target, count, samples, began, stop)),
            threading.Thread(target=merchant_rounds, args=(base, token, store_id, tally, stop)),
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        console.print(f"soak: {args.minutes:g} min, a day every {args.day_seconds:g} s…")
        with tqdm(total=round(seconds), desc="soak", unit="s", disable=None) as bar:
            ticker = threading.Thread(target=_tick, args=(bar, began, seconds, stop), daemon=True)
            ticker.start()
            asyncio.run(load(fleet, hub.port, args, tally, began + seconds))
        stop.set()
        for thread in threads:
            thread.join(60)
        stop_servers([hub])
        w_stop.set()
        d_stop.set()
        web_process.join(30)
        worker_process.join(60)
        r_stop.set()
        arrivals.get(timeout=60)
        receiver.join(30)
    return Outcome(tally, samples, report(console, args, tally, samples))


def _tick(bar: Any, began: float, seconds: float, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        bar.n = min(round(time.perf_counter() - began), round(seconds))
        bar.refresh()


def report(console: Console, args: argparse.Namespace, tally: Tally, samples: Samples) -> Path:
    """The table, the verdicts and the plot."""
    warm = max(1, len(samples.times) // 5)
    table = Table(title=f"Soak: {args.devices:,} devices, {args.minutes:g} min, "
                        f"{'PostgreSQL' if args.url else 'SQLite'}")  # fmt: skip
    for column in ("process", "RSS after warm-up MiB", "RSS at the end MiB", "growth MiB",
                   "max MiB"):  # fmt: skip
        table.add_column(column, justify="right")
    for name, values in samples.rss.items():
        table.add_row(name, f"{values[warm]:.1f}", f"{values[-1]:.1f}",
                      f"{values[-1] - values[warm]:+.1f}", f"{max(values):.1f}")  # fmt: skip
    console.print(table)
    sent = ", ".join(f"{what} {n:,}" for what, n in sorted(tally.sent.items()))
    answers = ", ".join(f"{what} {n:,}" for what, n in sorted(tally.answers.items()))
    console.print(f"sent: {sent}")
    console.print(f"answers: {answers}")
    console.print(f"error answers (CoAP not 2.xx, HTTP 5xx, no answer): {tally.errors}")
    lags = samples.lag or [0.0]
    console.print(f"outbox lag: max {max(lags):.1f} s, at the end {lags[-1]:.1f} s; webhooks "
                  f"delivered {samples.delivered[-1] if samples.delivered else 0:,}")  # fmt: skip
    console.print(f"load average at the end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%S}.png"
    plot(samples, path, f"soak: {args.devices:,} devices, a day every {args.day_seconds:g} s")
    console.print(f"plot: {path}")
    return path


if __name__ == "__main__":
    main()
