"""Settings from the environment; every one has a working default (CONTRACT.md)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///var/restock.db"


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "on", "true", "yes"}


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Settings:
    """Everything the composition root needs to know, read once."""

    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    coap_host: str = "127.0.0.1"
    coap_port: int = 5683
    public_url: str = "http://127.0.0.1:8000"
    mdns: bool = True
    alexa_skill_id: str | None = None
    alexa_verify: bool = True
    secret_key: str = ""
    var_dir: Path = Path("var")
    rate_limit_storage: str = "memory://"
    rate_limits: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: os.environ)."""
        env = os.environ if env is None else env
        var_dir = Path(env.get("RESTOCK_VAR_DIR", "var"))
        http_host, http_port = _host_port(env.get("RESTOCK_HTTP", "127.0.0.1:8000"), 8000)
        coap_host, coap_port = _host_port(env.get("RESTOCK_COAP", "127.0.0.1:5683"), 5683)
        return cls(
            database_url=env.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            http_host=http_host,
            http_port=http_port,
            coap_host=coap_host,
            coap_port=coap_port,
            public_url=env.get("RESTOCK_PUBLIC_URL", f"http://{http_host}:{http_port}").rstrip("/"),
            mdns=_flag(env.get("RESTOCK_MDNS", "on")),
            alexa_skill_id=env.get("RESTOCK_ALEXA_SKILL_ID") or None,
            alexa_verify=_flag(env.get("RESTOCK_ALEXA_VERIFY", "on")),
            secret_key=env.get("RESTOCK_SECRET_KEY", ""),
            var_dir=var_dir,
            rate_limit_storage=env.get("RESTOCK_RATELIMIT_STORAGE", "memory://"),
            rate_limits=_flag(env.get("RESTOCK_RATE_LIMITS", "on")),
        )

    def with_secret_key(self) -> Settings:
        """Return settings whose secret key is set, generating one into var/ on first use."""
        if self.secret_key:
            return self
        path = self.var_dir / "secret_key"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            # Created with 0600 so other local users can't forge sessions.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=path.read_text().strip())
