"""The command line: run, web, hub, migrate, seed, simulate (CONTRACT.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from orders.store.db import Database, make_engine
from orders.store.model import DeviceModel, Store
from restock.logs import configure as configure_logs
from restock.migrate import upgrade
from restock.seed import seed_demo
from restock.settings import Settings, SettingsError, create_private_sqlite_file

log = logging.getLogger("restock")


def _database(settings: Settings) -> Database:
    create_private_sqlite_file(settings.database_url)
    return Database(make_engine(settings.database_url))


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    """Alembic upgrade to head."""
    db = _database(settings)
    upgrade(db.engine)
    print(f"migrated {db.engine.url.render_as_string(hide_password=True)} to head")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    """Create the demo store (idempotent)."""
    if not args.demo:
        print("nothing to seed: pass --demo", file=sys.stderr)
        return 2
    db = _database(settings)
    upgrade(db.engine)
    result = seed_demo(db)
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        _print_seed(result.as_json(), created=result.created)
    return 0


def _print_seed(report: dict[str, object], *, created: bool) -> None:
    word = "created" if created else "already there"
    print(f"demo store {report['store_id']}: {word}")
    for role in ("merchant", "shopper"):
        person = report[role]
        assert isinstance(person, dict)
        secret = person["password"] or "(set when first created; not shown again)"
        print(f"  {role}: {person['email']}  password: {secret}")


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate, seed the demo store only with --demo, then serve web + CoAP hub in one process."""
    from restock.server import serve

    settings.refuse_unsafe()
    settings = settings.with_secret_key()
    db = _database(settings)
    upgrade(db.engine)
    # A production run must never create or print logins nobody asked for.
    if args.demo:
        result = seed_demo(db)
        if result.created:
            print("First run: generated the demo logins below. They are shown only this once.")
            _print_seed(result.as_json(), created=True)
    return serve(settings, db)


def cmd_alexa_model(settings: Settings, args: argparse.Namespace) -> int:
    """Write the skill package (skill.json + en-US model) from a store's catalog."""
    from orders.queries.search import catalog
    from restock.seed import DEMO_SLUG
    from voice_skill.interaction_model import PACKAGE_DIR, endpoint_for, write_skill_package

    db = _database(settings)
    upgrade(db.engine)
    store_id = args.store_id
    if store_id is None:
        with db.read() as session:
            store_id = session.scalar(select(Store.id).where(Store.slug == DEMO_SLUG))
        if store_id is None:
            print("no demo store: run `seed --demo` first or pass --store-id", file=sys.stderr)
            return 2
    products = catalog(db, store_id)
    if not products:
        print(f"store {store_id} has no active products to put in the model", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else PACKAGE_DIR
    endpoint = args.endpoint or endpoint_for(settings.public_url)
    for path in write_skill_package(out, products, endpoint=endpoint):
        print(f"wrote {path}")
    return 0


def cmd_hub(settings: Settings, _args: argparse.Namespace) -> int:
    """Serve the CoAP hub only: more hub processes for scale (run `migrate` once before)."""
    from restock.server import serve

    return serve(settings, _database(settings), web=False, hub=True, worker=False)


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    """Deliver webhooks only: any number of workers share the outbox (run `migrate` first)."""
    from restock.server import serve

    return serve(settings, _database(settings), web=False, hub=False, worker=True)


def cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the web on gunicorn with N worker processes (run `migrate` once before)."""
    from restock.web_server import WebOptions, default_workers, serve_web

    settings.refuse_unsafe()
    # Generated before the fork, so every worker signs sessions with the same key.
    settings = settings.with_secret_key()
    create_private_sqlite_file(settings.database_url)
    workers = args.workers or int(os.environ.get("RESTOCK_WEB_WORKERS") or default_workers())
    threads = args.threads or int(os.environ.get("RESTOCK_WEB_THREADS") or 4)
    return serve_web(settings, WebOptions(workers=workers, threads=threads))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """A simulated button or appliance: discover, link, press / report."""
    import asyncio

    from device_hub.simulate import DeviceError, DeviceOptions, SimulatedDevice

    client_id = args.client_id or _demo_client(settings, args.kind, oscore=args.oscore)
    if client_id is None:
        print(
            "no --client-id and no demo store to take one from (`seed --demo` creates it)",
            file=sys.stderr,
        )
        return 2
    options = DeviceOptions(
        kind=args.kind,
        client_id=client_id,
        serial=args.serial or f"SIM-{args.kind}-{secrets.token_hex(3)}",
        hub=args.hub,
        presses=args.presses,
        reports=args.reports,
        pause=args.pause,
        unit_secret=args.unit_secret,
        cancel=args.cancel,
        oscore=args.oscore,
        state=args.state,
        **({"slots": tuple(args.slot), "unit": args.unit} if args.slot else {}),
        faults=tuple(args.fault or ()),
    )
    try:
        return asyncio.run(SimulatedDevice(options, out=lambda line: print(line, flush=True)).run())
    except DeviceError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1


def _demo_client(settings: Settings, kind: str, *, oscore: bool = False) -> str | None:
    """The demo store's client id for `kind` (a convenience for `make run` users)."""
    from restock.seed import DEMO_SLUG

    # Only looked up: a simulator pointed at a production database must not create a demo store.
    try:
        db = _database(settings)
        with db.read() as session:
            client = session.scalar(
                select(DeviceModel.client_id)
                .join(Store, Store.id == DeviceModel.store_id)
                .where(
                    Store.slug == DEMO_SLUG,
                    DeviceModel.kind == kind,
                    DeviceModel.security == ("oscore" if oscore else "bearer"),
                )
                .order_by(DeviceModel.id)
                .limit(1)
            )
        db.dispose()
    except Exception:  # no reachable database (or no schema): the user must say which client
        log.debug("no demo client", exc_info=True)
        return None
    return client


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m restock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="migrate, then serve web + CoAP hub")
    run.add_argument("--demo", action="store_true", help="seed the demo store first (make run)")
    run.set_defaults(func=cmd_run)
    sub.add_parser("migrate", help="upgrade the database to head").set_defaults(func=cmd_migrate)
    sub.add_parser("hub", help="serve the CoAP hub only").set_defaults(func=cmd_hub)
    web = sub.add_parser("web", help="serve the web only, on gunicorn worker processes")
    web.add_argument(
        "--workers", type=int, help="worker processes (default: RESTOCK_WEB_WORKERS or 2*cores+1)"
    )
    web.add_argument(
        "--threads", type=int, help="threads per worker (default: RESTOCK_WEB_THREADS or 4)"
    )
    web.set_defaults(func=cmd_web)
    worker = sub.add_parser("worker", help="deliver webhooks from the outbox only")
    worker.set_defaults(func=cmd_worker)
    sim = sub.add_parser("simulate", help="a simulated button or appliance")
    sim.add_argument("kind", choices=["button", "appliance"])
    sim.add_argument("--hub", help="coap://host:port (default: find the hub by mDNS)")
    sim.add_argument("--client-id", help="the device model's OAuth client id (default: demo)")
    sim.add_argument("--serial", help="the device's serial number (default: random)")
    sim.add_argument("--unit-secret", help="the unit's secret, for models that require one")
    sim.add_argument("--presses", type=int, default=2, help="button presses to send")
    sim.add_argument("--reports", type=int, default=5, help="appliance level reports to send")
    sim.add_argument("--pause", type=float, default=1.0, help="seconds between sends")
    sim.add_argument(
        "--cancel", action="store_true", help="button: cancel each order a press placed"
    )
    sim.add_argument(
        "--oscore", action="store_true", help="protect requests with OSCORE (RFC 8613/9203)"
    )
    sim.add_argument(
        "--state", help="file keeping the tokens across restarts (written at link and refresh)"
    )
    sim.add_argument(
        "--slot", action="append", help="appliance: a slot to report (repeat for several)"
    )
    sim.add_argument("--unit", default="%", help="appliance: the unit of the --slot levels")
    sim.add_argument(
        "--fault", action="append", help="appliance: a flag condition to report as true"
    )
    sim.set_defaults(func=cmd_simulate)
    seed = sub.add_parser("seed", help="create demo data (idempotent)")
    seed.add_argument("--demo", action="store_true", help="the demo store, people and clients")
    seed.add_argument("--json", action="store_true", help="print the result as JSON")
    seed.set_defaults(func=cmd_seed)
    model = sub.add_parser("alexa-model", help="generate the Alexa skill package from a catalog")
    model.add_argument(
        "--store-id", type=int, help="the store whose catalog to use (default: demo)"
    )
    model.add_argument("--out", help="output directory (default: voice_skill/skill-package)")
    model.add_argument("--endpoint", help="HTTPS endpoint (default: RESTOCK_PUBLIC_URL + /alexa)")
    model.set_defaults(func=cmd_alexa_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m restock`."""
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logs(settings.log_format)
    try:
        return int(args.func(settings, args))
    except SettingsError as exc:
        print(f"restock: {exc}", file=sys.stderr)
        return 2
