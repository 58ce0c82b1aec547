"""docker-compose.yml's topology without Docker: the same roles as processes on one machine.

migrate once, two hubs on one UDP port (SO_REUSEPORT), two web processes sharing one
secret key and Redis, the worker where the CLI has it; then the health probes the compose
file runs, a simulated button linked through the web and pressed, and the order in the
database.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from orders.store.db import Database, make_engine
from orders.store.model import Device, Order, OrderLine
from tests.conftest import require_or_skip
from tests.e2e.conftest import ROOT, coap_answers, free_port, restock_env, run_cli
from tests.e2e.topology import (
    Role,
    has_role,
    link_and_press,
    start_role,
    wait_until,
)
from tests.pg_schemas import postgres_schema, schema_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def database_url() -> Iterator[str]:
    """DATABASE_URL of an empty schema (the topology is PostgreSQL's: SQLite is one process)."""
    with postgres_schema() as schema:
        yield schema_url(schema)


def _probe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restock.healthcheck", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_compose_topology_links_a_device_and_takes_its_press(
    database_url: str, tmp_path: Path
) -> None:
    """Every role up as in compose; a button links on one web, approved on the other, orders."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as exc:
        require_or_skip(f"Redis at {REDIS_URL} is unreachable ({exc}): the webs share it")
    coap = free_port(socket.SOCK_DGRAM)
    http = [free_port(), free_port()]
    web_urls = [f"http://127.0.0.1:{port}" for port in http]
    env = restock_env(
        tmp_path, database_url,
        RESTOCK_SECRET_KEY=secrets.token_urlsafe(32),
        RESTOCK_PUBLIC_URL=web_urls[0],
        RESTOCK_RATELIMIT_STORAGE=REDIS_URL,
        RESTOCK_WEB_WORKERS="2",
    )  # fmt: skip

    migrated = run_cli(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    seeded = run_cli(["seed", "--demo", "--json"], env)
    assert seeded.returncode == 0, seeded.stderr
    demo = json.loads(seeded.stdout)

    roles: list[Role] = []
    try:
        for n in (1, 2):
            hub_env = {**env, "RESTOCK_COAP": f"127.0.0.1:{coap}"}
            roles.append(start_role(f"hub-{n}", ["-m", "restock", "hub"], hub_env, tmp_path))
        for n, port in enumerate(http, start=1):
            web_env = {**env, "RESTOCK_HTTP": f"127.0.0.1:{port}"}
            roles.append(start_role(f"web-{n}", ["-m", "restock", "web"], web_env, tmp_path))
        if has_role("worker"):
            roles.append(start_role("worker", ["-m", "restock", "worker"], env, tmp_path))
        hubs, webs = roles[:2], roles[2:4]
        # Both hubs bound the one port: without SO_REUSEPORT the second would exit.
        for hub in hubs:
            wait_until(hub, ready=f"coap://127.0.0.1:{coap}")
        for web, url in zip(webs, web_urls, strict=True):
            wait_until(web, url=f"{url}/healthz")
        assert coap_answers(coap)

        # The compose file's health checks, run as compose runs them.
        for probe in (
            ("http", f"{web_urls[0]}/readyz"),
            ("http", f"{web_urls[1]}/readyz"),
            ("coap", f"127.0.0.1:{coap}"),
            ("db",),
        ):
            result = _probe(*probe, env=env)
            assert result.returncode == 0, (probe, result.stderr)

        # The shopper signs in on web-2; the device's link (RESTOCK_PUBLIC_URL) is web-1's.
        login = (demo["shopper"]["email"], demo["shopper"]["password"])
        printed = link_and_press(
            f"coap://127.0.0.1:{coap}", demo["clients"]["button"], "SIM-TOPOLOGY", env,
            web_urls[1], login,
        )  # fmt: skip
        assert "press 1: 2.01 placed" in printed and "press 2: 2.01 in_progress" in printed
        assert all(role.alive() for role in roles), [r.output() for r in roles if not r.alive()]

        db = Database(make_engine(database_url))
        try:
            with db.read() as session:
                orders = session.execute(
                    select(Order.channel, Order.status, OrderLine.sku, OrderLine.quantity)
                    .join(Device, Device.id == Order.device_id)
                    .join(OrderLine, OrderLine.order_id == Order.id)
                    .where(Device.serial == "SIM-TOPOLOGY")
                ).all()
        finally:
            db.dispose()
        assert orders == [("button", "placed", "BAT-AA-8", 1)]

        # Every role stops cleanly on SIGTERM (what `docker compose stop` and a roll send).
        for role in roles:
            assert role.stop() == 0, f"{role.name}:\n{role.output()}"
        refused = _probe("coap", f"127.0.0.1:{coap}", env=env)
        assert refused.returncode == 1 and "unhealthy" in refused.stderr
    finally:
        for role in roles:
            if not role.stopped:
                role.stop(timeout=10)
