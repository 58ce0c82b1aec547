"""Rate limits on /login, /oauth/token, /oauth/device_authorization and /link (memory and Redis)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from auth.limits import CONFIG_KEY, RateLimits
from orders.store.db import Database
from tests.auth_fixtures import PASSWORD, build_oauth_world
from tests.conftest import AppFactory, Backend, require_or_skip
from tests.web_helpers import csrf_token, sign_in

REDIS_URL = "redis://127.0.0.1:6379"
TIGHT = RateLimits(
    login="3 per minute", token="3 per minute", device_authorization="2 per minute",
    link="4 per minute", wrong_user_codes="5 per minute",
)  # fmt: skip


@pytest.fixture
def sqlite_db(sqlite_backend: Backend) -> Iterator[Database]:
    """Limits don't depend on the database: SQLite only, emptied afterwards."""
    try:
        yield Database(sqlite_backend.engine)
    finally:
        sqlite_backend.clean()


@pytest.fixture(params=["memory://", REDIS_URL])
def storage(request: pytest.FixtureRequest) -> str:
    """Each limiter storage in turn; Redis must answer (a failure under CI=true)."""
    url: str = request.param
    if url.startswith("redis"):
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
        except redis.RedisError as exc:
            require_or_skip(f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture
def tight(app_factory: AppFactory, sqlite_db: Database, storage: str) -> Callable[..., Flask]:
    """Apps over SQLite with TIGHT limits in `storage`; keywords override settings."""

    def build(**overrides: Any) -> Flask:
        return app_factory(
            sqlite_db, config={CONFIG_KEY: TIGHT}, rate_limit_storage=storage, **overrides
        )

    return build


def test_login_attempts_are_limited_with_an_html_429(tight: Callable[..., Flask]) -> None:
    """Three login posts a minute; the fourth is a 429 page with Retry-After."""
    client = tight().test_client()
    token = csrf_token(client.get("/login").text)
    for _ in range(3):
        response = client.post("/login", data={"email": "a@b.test", "password": "x" * 12,
                                               "csrf_token": token})  # fmt: skip
        assert response.status_code == 401
    blocked = client.post(
        "/login", data={"email": "a@b.test", "password": "x", "csrf_token": token}
    )
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    assert int(blocked.headers["Retry-After"]) > 0
    assert client.get("/login").status_code == 200, "only attempts (POST) are counted"


def test_token_endpoint_limit_answers_problem_json(tight: Callable[..., Flask]) -> None:
    """The token endpoint's 429 is application/problem+json with error rate_limited."""
    client = tight().test_client()
    for _ in range(3):
        assert client.post("/oauth/token", data={"grant_type": "password"}).status_code == 400
    blocked = client.post("/oauth/token", data={"grant_type": "password"})
    assert blocked.status_code == 429
    assert blocked.mimetype == "application/problem+json"
    assert blocked.get_json()["error"] == "rate_limited" and blocked.headers["Retry-After"]


def test_device_authorization_is_limited(sqlite_db: Database, tight: Callable[..., Flask]) -> None:
    """Two device authorizations a minute from one address, then 429 (and no third code)."""
    o = build_oauth_world(sqlite_db)
    client = tight().test_client()
    for _ in range(2):
        ok = client.post("/oauth/device_authorization", data={"client_id": o.button})
        assert ok.status_code == 200
    blocked = client.post("/oauth/device_authorization", data={"client_id": o.button})
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "rate_limited"


def test_link_page_has_an_overall_limit_per_account(
    sqlite_db: Database, tight: Callable[..., Flask]
) -> None:
    """Four /link requests a minute per shopper, then the HTML 429 page."""
    o = build_oauth_world(sqlite_db)
    client = tight().test_client()
    sign_in(client, o.shopper_email, PASSWORD)
    for _ in range(4):
        assert client.get("/link").status_code == 200
    blocked = client.get("/link")
    assert blocked.status_code == 429 and "<h1>Too many attempts</h1>" in blocked.text


def test_limits_can_be_switched_off(tight: Callable[..., Flask]) -> None:
    """Settings(rate_limits=False): no 429 however often."""
    client = tight(rate_limits=False).test_client()
    for _ in range(8):
        assert client.post("/oauth/token", data={"grant_type": "password"}).status_code == 400


def test_workers_of_one_deployment_share_redis_counters(
    app_factory: AppFactory, sqlite_db: Database
) -> None:
    """Two apps with one secret share counts through Redis; another secret counts apart."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError as exc:
        require_or_skip(f"Redis at {REDIS_URL} does not answer: {exc}")
    secret = secrets.token_hex(16)
    limits = {"config": {CONFIG_KEY: TIGHT}, "rate_limit_storage": REDIS_URL}
    first = app_factory(sqlite_db, secret_key=secret, **limits).test_client()
    second = app_factory(sqlite_db, secret_key=secret, **limits).test_client()
    other = app_factory(sqlite_db, **limits).test_client()
    for client in (first, second, first):
        assert client.post("/oauth/token", data={"grant_type": "password"}).status_code == 400
    assert second.post("/oauth/token", data={"grant_type": "password"}).status_code == 429
    assert other.post("/oauth/token", data={"grant_type": "password"}).status_code == 400
