"""Telemetry reports/s under each reorder policy, beside a policy that never looks (baseline).

Each device has 60 days of hourly readings stored, so the predictive policy reads its full
history window (bounded at 1,000 readings) and runs the estimator on every report.

python -m bench.telemetry_policy [--reports N] [--url DATABASE_URL]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

from tqdm import tqdm

from bench.common import HOME, print_rates, scratch_database
from orders.services.addresses import add_address
from orders.services.catalog import (
    SlotSpec,
    add_product,
    create_device_model,
    create_shopper,
    create_store,
)
from orders.services.devices import LinkRules, link_device, register_device
from orders.services.telemetry import Policy, SlotLevel, link_policy, record_telemetry
from orders.store.db import Database, utcnow
from orders.store.model import SupplyReading

HISTORY_DAYS = 60


def _never(_state: SlotLevel) -> bool:
    return False


def _setup(db: Database) -> dict[str, int]:
    """One store, one coffee-machine model, a device per policy with 60 days of readings."""
    now = utcnow()
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench", currency="EUR")
        add_product(session, store, sku="PODS", name="Pods", price_minor=500, stock=10**6)
        model = create_device_model(
            session, store, name="Machine", kind="appliance",
            slots=[SlotSpec("pods", "count", 500, "PODS", 50)], security="bearer",
        )  # fmt: skip
        shopper = create_shopper(session, name="Bench shopper")
        add_address(session, shopper.id, HOME)
        devices: dict[str, int] = {}
        for name in ("baseline", "threshold", "predictive"):
            device = register_device(session, model, f"SN-{name}")
            policy = "predictive" if name == "predictive" else "threshold"
            link_device(session, device, shopper, LinkRules(product_sku="PODS", policy=policy))
            hours = HISTORY_DAYS * 24
            session.add_all(
                # A slow, steady drain that stays well above every reorder point.
                SupplyReading(device_id=device.id, slot="pods", value=500 - 0.05 * h,
                              unit="count", measured_at=now - timedelta(hours=hours - h))
                for h in range(hours)
            )  # fmt: skip
            devices[name] = device.id
    return devices


def _timed(label: str, n: int, db: Database, device_id: int, policy: Policy) -> list[float]:
    latencies = []
    for _ in tqdm(range(n), desc=label, unit="report", leave=False):
        pack = [{"n": "pods", "u": "count", "v": 420.0}]
        start = time.perf_counter()
        result = record_telemetry(db, device_id, pack, policy=policy)
        latencies.append(time.perf_counter() - start)
        assert result.action == "none", "the bench series must never reorder"
    return latencies


def run(url: str | None, n: int) -> dict[str, list[float]]:
    """Latencies per policy on one scratch database."""
    with scratch_database(url) as db:
        devices = _setup(db)
        runs: dict[str, tuple[int, Callable[[SlotLevel], object]]] = {
            "never (baseline)": (devices["baseline"], _never),
            "link: threshold": (devices["threshold"], link_policy),
            "link: predictive": (devices["predictive"], link_policy),
        }
        return {
            label: _timed(label, n, db, device_id, policy)  # type: ignore[arg-type]
            for label, (device_id, policy) in runs.items()
        }


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--url", default=None, help="DATABASE_URL (default: env, else SQLite)")
    args = parser.parse_args()
    results = run(args.url, args.reports)
    backend = (args.url or "sqlite").split(":")[0]
    title = f"{args.reports} telemetry reports per policy on {backend}"
    print_rates(title, "policy", "reports", results, "never (baseline)")


if __name__ == "__main__":
    main()
