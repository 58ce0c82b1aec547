"""docker-compose.yml and the Dockerfile describe the production topology (read, not run)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RESTOCK_ROLES = {"migrate", "web-1", "web-2", "hub-net", "hub-1", "hub-2", "worker"}
LONG_RUNNING = {"db", "redis"} | RESTOCK_ROLES - {"migrate"}
# ${NAME:?message}: compose refuses to start while NAME is unset or empty.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")
REFERENCE = re.compile(r"\$\{(\w+)(:?[-?][^}]*)?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
NOT_REQUIRED = {
    "RESTOCK_ALEXA_SKILL_ID",  # an Amazon id, public in the skill's manifest
    "RESTOCK_METRICS_TOKEN",  # unset turns /metrics off: there is nothing to default to
}


@pytest.fixture(scope="module")
def compose_text() -> str:
    """docker-compose.yml as written."""
    return (ROOT / "docker-compose.yml").read_text()


@pytest.fixture(scope="module")
def services(compose_text: str) -> dict[str, Any]:
    """Its services, with YAML anchors and merge keys resolved."""
    parsed = yaml.safe_load(compose_text)
    assert isinstance(parsed, dict)
    return dict(parsed["services"])


def _command(service: dict[str, Any]) -> list[str]:
    return list(service.get("command") or [])


def _healthcheck(service: dict[str, Any]) -> list[str]:
    check = service.get("healthcheck") or {}
    return [] if check.get("disable") else list(check.get("test") or [])


def test_compose_runs_every_role_of_the_topology(services: dict[str, Any]) -> None:
    """db, redis, a one-shot migrate, two webs, two hubs on one port, and the worker."""
    assert set(services) == {"db", "redis"} | RESTOCK_ROLES
    roles = {name: _command(services[name])[-1] for name in RESTOCK_ROLES - {"hub-net"}}
    assert roles == {
        "migrate": "migrate", "web-1": "web", "web-2": "web",
        "hub-1": "hub", "hub-2": "hub", "worker": "worker",
    }  # fmt: skip
    for name in RESTOCK_ROLES:
        assert services[name]["build"] == "." and services[name]["image"] == "restock:local"


def test_every_role_starts_only_after_the_migration_succeeded(services: dict[str, Any]) -> None:
    """migrate waits for a healthy db; every other Restock role waits for migrate to exit 0."""
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in RESTOCK_ROLES - {"migrate", "hub-net"}:
        needs = services[name]["depends_on"]["migrate"]
        assert needs == {"condition": "service_completed_successfully"}, name
    for name in ("web-1", "web-2"):
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_long_running_services_restart_and_have_health_checks(services: dict[str, Any]) -> None:
    """Everything but the one-shot migrate restarts unless stopped and says when it is healthy."""
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert _healthcheck(services[name]), name
    assert services["migrate"]["restart"] == "no"
    for name in ("web-1", "web-2"):
        check = _healthcheck(services[name])
        assert check[-3:] == ["restock.healthcheck", "http", "http://127.0.0.1:8000/readyz"]
    for name in ("hub-net", "hub-1", "hub-2"):
        assert _healthcheck(services[name])[-2:] == ["coap", "127.0.0.1:5683"]
    assert _healthcheck(services["worker"])[-2:] == ["restock.healthcheck", "db"]


def test_two_webs_publish_their_own_ports_and_share_one_secret_key(
    services: dict[str, Any],
) -> None:
    """Each web container listens on 8000 inside, published on a port of its own."""
    published = [services[name]["ports"] for name in ("web-1", "web-2")]
    assert [ports[0].rsplit(":", 2)[1:] for ports in published] == [
        ["8000", "8000/tcp"],
        ["8001", "8000/tcp"],
    ]
    keys = {services[name]["environment"]["RESTOCK_SECRET_KEY"] for name in ("web-1", "web-2")}
    assert len(keys) == 1 and REQUIRED.fullmatch(keys.pop())
    for name in ("web-1", "web-2"):
        storage = services[name]["environment"]["RESTOCK_RATELIMIT_STORAGE"]
        assert storage.startswith("redis://") and "@redis:6379" in storage


def test_two_hubs_share_one_published_udp_port(services: dict[str, Any]) -> None:
    """Both hubs bind 5683 in hub-net's network namespace; only hub-net publishes it."""
    for name in ("hub-1", "hub-2"):
        assert services[name]["network_mode"] == "service:hub-net"
        assert services[name]["environment"]["RESTOCK_COAP"] == "0.0.0.0:5683"
        assert "ports" not in services[name]
    assert [port.rsplit(":", 2)[1:] for port in services["hub-net"]["ports"]] == [
        ["5683", "5683/udp"]
    ]


def test_no_secret_has_a_default_and_env_example_names_each(
    compose_text: str, services: dict[str, Any]
) -> None:
    """Every password and key comes from .env and is refused when missing; none is written."""
    references = {name: rest or "" for name, rest in REFERENCE.findall(compose_text)}
    secrets = {name for name in references if SECRET_NAME.search(name)} - NOT_REQUIRED
    assert secrets == {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "RESTOCK_SECRET_KEY"}
    for name in secrets | {"RESTOCK_PUBLIC_URL"}:
        assert references[name].startswith(":?"), name
    # A secret's value in any container is always one of those references, never a literal.
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) and key not in NOT_REQUIRED:
                assert REQUIRED.fullmatch(str(value)), (name, key)
            if "://" in str(value) and "@" in str(value):
                userinfo = str(value).split("://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo or REQUIRED.search(userinfo), (name, key)
    example = (ROOT / ".env.example").read_text()
    assigned = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    required = set(REQUIRED.findall(compose_text))
    assert set(assigned) == required and not any(assigned.values())


def test_the_operators_env_file_stays_out_of_git_and_the_image() -> None:
    """.env is ignored by git and by the Docker build context."""
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_database_keeps_its_data_in_a_named_volume(services: dict[str, Any]) -> None:
    """PostgreSQL's data directory is the named volume pgdata."""
    parsed = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "pgdata" in parsed["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]


def test_the_image_runs_as_a_fixed_unprivileged_user_on_a_pinned_base() -> None:
    """The base is pinned by digest and the last USER is a numeric uid other than root."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim@sha256:[0-9a-f]{64}$", dockerfile, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert "useradd --system --uid 10001" in dockerfile


def test_restock_containers_drop_privileges_they_never_need(services: dict[str, Any]) -> None:
    """Read-only root, no capabilities, no privilege gain, an init to forward signals."""
    for name in RESTOCK_ROLES:
        service = services[name]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert service["security_opt"] == ["no-new-privileges:true"] and service["init"], name
