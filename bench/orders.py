"""Orders/s through the service layer beside a bare SQLAlchemy insert of the same rows.

python -m bench.orders [--orders N] [--url DATABASE_URL]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sqlalchemy import insert, select
from tqdm import tqdm

from bench.common import HOME, print_rates, scratch_database
from orders.domain.rules import cancel_deadline
from orders.services.addresses import add_address
from orders.services.catalog import add_product, create_shopper, create_store
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from orders.store.model import Order, OrderEvent, OrderLine, Product, new_order_id


def _setup(db: Database, n: int) -> tuple[int, int, int]:
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench", currency="EUR")
        product = add_product(
            session, store, sku="SKU", name="Thing", price_minor=199, stock=10 * n + 10
        )
        shopper = create_shopper(session, name="Bench shopper")
        add_address(session, shopper.id, HOME)
        return store.id, shopper.id, product.id


def _timed(label: str, n: int, one: Callable[[int], None]) -> list[float]:
    latencies = []
    for i in tqdm(range(n), desc=label, unit="order", leave=False):
        start = time.perf_counter()
        one(i)
        latencies.append(time.perf_counter() - start)
    return latencies


def run(url: str | None, n: int) -> dict[str, list[float]]:
    """Measure both ways on one scratch database; returns latencies per way."""
    with scratch_database(url) as db:
        store_id, shopper_id, product_id = _setup(db, n)

        def service(i: int) -> None:
            request = OrderRequest(
                store_id, shopper_id, "api", (LineRequest("SKU", 1),), f"bench-{i}"
            )
            place_order(db, request)

        def bare(i: int) -> None:
            now = utcnow()
            order_id = new_order_id()
            with db.write() as session:
                session.execute(
                    insert(Order).values(
                        id=order_id, store_id=store_id, shopper_id=shopper_id, channel="api",
                        status="placed", idempotency_key=f"bare-{i}", total_minor=199,
                        currency="EUR", created_at=now, updated_at=now,
                        cancel_until=cancel_deadline(now, 30),
                    )
                )  # fmt: skip
                session.execute(
                    insert(OrderLine).values(
                        order_id=order_id, product_id=product_id, sku="SKU", name="Thing",
                        quantity=1, unit_price_minor=199, line_total_minor=199,
                    )
                )  # fmt: skip
                session.execute(
                    insert(OrderEvent).values(
                        order_id=order_id, store_id=store_id, type="order.created",
                        status="placed", data={}, created_at=now,
                    )
                )  # fmt: skip

        results = {
            "bare insert": _timed("bare", n, bare),
            "place_order": _timed("service", n, service),
        }
        with db.read() as session:
            stock = session.scalar(select(Product.stock).where(Product.id == product_id))
        assert stock == 10 * n + 10 - n, "the service run did not take stock as expected"
        return results


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--url", default=None, help="DATABASE_URL (default: env, else SQLite)")
    args = parser.parse_args()
    results = run(args.url, args.orders)
    backend = (args.url or "sqlite").split(":")[0]
    title = f"{args.orders} orders, one transaction each, on {backend}"
    print_rates(title, "path", "orders", results, "bare insert")


if __name__ == "__main__":
    main()
