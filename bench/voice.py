"""Voice purchases per second over HTTP beside a bare ask-sdk-core skill on the same server.

One round trip = a BuyIntent (read-back) and the AMAZON.YesIntent that orders, each a real
HTTP request to waitress, signature checks off (the timestamp check stays on). The baseline
is a bare ask-sdk-core skill answering a constant sentence to the same two requests, mounted
on the same Flask app and waitress server in the same run.

python -m bench.voice [--trips N] [--url DATABASE_URL]
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from ask_sdk_core.handler_input import HandlerInput
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_core.skill_builder import SkillBuilder
from ask_sdk_model.request_envelope import RequestEnvelope
from ask_sdk_model.response import Response
from flask import Flask, jsonify, request
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, update
from tqdm import tqdm

from auth.model import OAuthClient
from auth.principal import SHOPPER_SCOPES
from auth.tokens import issue_token
from bench.common import HOME, percentile, scratch_database
from orders.services.addresses import add_address
from orders.services.catalog import add_product, create_shopper, create_store
from orders.services.ordering import LineRequest, OrderRequest, place_order
from orders.store.db import Database, utcnow
from orders.store.model import Order, Product
from restock.app import create_app
from restock.server import web_in_thread
from restock.settings import Settings

SKILL_ID = "amzn1.ask.skill.bench"


def _world(db: Database, trips: int) -> str:
    """A store, a product with stock for every trip, a linked shopper; returns the token."""
    with db.write() as session:
        store = create_store(session, slug="bench", name="Bench Store", currency="EUR")
        add_product(
            session, store, sku="COF-PODS-50", name="Coffee pods (50)", price_minor=1599,
            stock=trips * 20 + 1000, aliases=["coffee pods", "pods"],
        )  # fmt: skip
        add_product(session, store, sku="BAT-AA-8", name="AA batteries (8)", price_minor=899)
        shopper = create_shopper(session, name="Bench shopper")
        add_address(session, shopper.id, HOME)
        client = OAuthClient(client_id="alexa-bench", name="Alexa", kind="alexa", store_id=store.id)
        session.add(client)
        return issue_token(
            session,
            client_id=client.client_id,
            kind="shopper",
            scope=SHOPPER_SCOPES,
            shopper_id=shopper.id,
            store_id=store.id,
        ).access_token


def _envelope(token: str, req: dict[str, Any], attributes: dict[str, Any], new: bool) -> bytes:
    user = {"userId": "amzn1.ask.account.BENCH", "accessToken": token}
    application = {"applicationId": SKILL_ID}
    return json.dumps(
        {
            "version": "1.0",
            "session": {
                "new": new,
                "sessionId": f"amzn1.echo-api.session.{secrets.token_hex(6)}",
                "application": application,
                "attributes": attributes,
                "user": user,
            },
            "context": {"System": {"application": application, "user": user}},
            "request": {
                "requestId": f"amzn1.echo-api.request.{secrets.token_hex(8)}",
                "timestamp": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "locale": "en-US",
                **req,
            },
        }
    ).encode()


BUY = {
    "type": "IntentRequest",
    "dialogState": "COMPLETED",
    "intent": {
        "name": "BuyIntent",
        "confirmationStatus": "NONE",
        "slots": {
            "quantity": {"name": "quantity", "value": "2"},
            "product": {"name": "product", "value": "coffee pods"},
        },
    },
}
YES = {
    "type": "IntentRequest",
    "dialogState": "COMPLETED",
    "intent": {"name": "AMAZON.YesIntent", "confirmationStatus": "NONE", "slots": {}},
}


def _add_bare_skill(app: Flask) -> None:
    """POST /bare: ask-sdk-core with one handler that says a constant sentence."""
    builder = SkillBuilder()

    @builder.request_handler(can_handle_func=lambda handler_input: True)
    def constant(handler_input: HandlerInput) -> Response:
        return handler_input.response_builder.speak("Okay.").ask("Anything else?").response

    skill = builder.create()
    serializer = DefaultSerializer()

    @app.post("/bare")
    def bare() -> Any:
        envelope = serializer.deserialize(
            payload=request.get_data(as_text=True), obj_type=RequestEnvelope
        )
        return jsonify(serializer.serialize(skill.invoke(request_envelope=envelope, context=None)))


def _trip(http: requests.Session, url: str, token: str) -> Callable[[], None]:
    def one() -> None:
        first = http.post(url, data=_envelope(token, BUY, {}, True), timeout=10)
        first.raise_for_status()
        attributes = first.json().get("sessionAttributes") or {}
        second = http.post(url, data=_envelope(token, YES, attributes, False), timeout=10)
        second.raise_for_status()

    return one


def _interleaved(trips: int, ways: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Time each way once per round, in turn, so load from other processes hits all alike."""
    latencies: dict[str, list[float]] = {name: [] for name in ways}
    for _ in tqdm(range(trips), desc="round trips", unit="round", leave=False):
        for name, one in ways.items():
            start = time.perf_counter()
            one()
            latencies[name].append(time.perf_counter() - start)
    return latencies


def run(url: str | None, trips: int) -> dict[str, list[float]]:
    """Both skills on one waitress server; returns round-trip latencies per skill."""
    # The verifier's "verification is off" warning is expected here; keep the output a table.
    logging.getLogger("voice_skill").setLevel(logging.ERROR)
    with scratch_database(url) as db, tempfile.TemporaryDirectory() as tmp:
        token = _world(db, trips)
        settings = Settings(
            database_url="sqlite://", secret_key="bench", alexa_verify=False, var_dir=Path(tmp)
        )
        app = create_app(settings, db)
        _add_bare_skill(app)
        with web_in_thread(app) as base, requests.Session() as http:
            http.headers["Content-Type"] = "application/json"
            restock, bare = _trip(http, f"{base}/alexa", token), _trip(http, f"{base}/bare", token)
            for _ in range(20):  # warm both paths (imports, pools, caches) before timing
                restock()
                bare()
            keys = iter(range(10**9))

            def floor() -> None:
                # The order service alone, no HTTP: the part of a round trip no skill avoids.
                line = (LineRequest("COF-PODS-50", 2),)
                place_order(db, OrderRequest(1, 1, "api", line, f"floor-{next(keys)}"))

            def commit() -> None:
                # One row rewritten and committed: what durability alone costs on this disk.
                touch = update(Product).where(Product.id == 1).values(stock=Product.stock)
                db.run_write(lambda session: session.execute(touch))

            results = _interleaved(
                trips,
                {
                    "bare ask-sdk-core skill": bare,
                    "Restock BuyIntent + Yes": restock,
                    "(place_order alone, no HTTP)": floor,
                    "(one durable commit, no HTTP)": commit,
                },
            )
        with db.read() as session:
            voice = session.scalar(select(func.count()).where(Order.channel == "voice"))
        assert voice == trips + 20, f"expected {trips + 20} voice orders, found {voice}"
        return results


def main() -> None:
    """Print the side-by-side table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trips", type=int, default=300)
    parser.add_argument("--url", default=None, help="DATABASE_URL (default: env, else SQLite)")
    args = parser.parse_args()
    results = run(args.url, args.trips)
    backend = (args.url or "sqlite").split(":")[0]
    table = Table(title=f"{args.trips} voice round trips (2 HTTP requests each), {backend}")
    for column in ("path", "per s", "p50 ms", "p99 ms", "ratio vs bare"):
        table.add_column(column)
    base_rate = len(results["bare ask-sdk-core skill"]) / sum(results["bare ask-sdk-core skill"])
    for name, latencies in results.items():
        rate = len(latencies) / sum(latencies)
        table.add_row(
            name,
            f"{rate:,.1f}",
            f"{percentile(latencies, 50) * 1000:.2f}",
            f"{percentile(latencies, 99) * 1000:.2f}",
            f"{rate / base_rate:.2f}×",
        )
    console = Console()
    console.print(table)
    bare_mean = statistics.fmean(results["bare ask-sdk-core skill"])
    floor_mean = statistics.fmean(results["(place_order alone, no HTTP)"])
    # A skill that does nothing but one place_order per round trip could reach at most this.
    commit_mean = statistics.fmean(results["(one durable commit, no HTTP)"])
    console.print(
        f"ceiling for any skill placing one order per trip: "
        f"{bare_mean / (bare_mean + floor_mean):.2f}× (bare / (bare + place_order)); "
        f"for one that only commits one row: {bare_mean / (bare_mean + commit_mean):.2f}×"
    )


if __name__ == "__main__":
    main()
