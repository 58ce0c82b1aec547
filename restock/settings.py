"""Settings from the environment; every one has a working default (CONTRACT.md)."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite:///var/restock.db"
# var/ holds the secret key and the SQLite database: nobody but the owner may look inside.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class SettingsError(Exception):
    """A setting Restock refuses to start with; the message says what to change."""


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) owner-only; an existing directory is left alone."""
    # mkdir's mode is masked by the umask, which can only narrow 0700, never widen it.
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def create_private_sqlite_file(database_url: str) -> None:
    """Create a SQLite database file owner-only before SQLite would create it world-readable."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    make_private_dir(path.parent)
    # SQLite gives its -wal and -shm files the database file's own permissions.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "on", "true", "yes"}


def _host_port(value: str, default_port: int) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host:
        return value, default_port
    return host.strip("[]"), int(port)


def _hops(value: str) -> int:
    hops = int(value.strip() or "0")
    if not 0 <= hops <= 10:
        raise ValueError("RESTOCK_TRUSTED_PROXIES must be a hop count from 0 to 10")
    return hops


def _seconds(value: str) -> float:
    seconds = float(value.strip() or "300")
    if not seconds > 0:
        raise ValueError("RESTOCK_OUTBOX_LAG_LIMIT must be a positive number of seconds")
    return seconds


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
    webhook_allow_private: bool = False
    smtp_url: str | None = None
    mail_from: str | None = None
    # Alexa Proactive Events (notifications); unset: none are sent.
    alexa_events_url: str | None = None
    alexa_events_client_id: str | None = None
    alexa_events_client_secret: str | None = field(default=None, repr=False)
    alexa_lwa_token_url: str = "https://api.amazon.com/auth/o2/token"
    # Reverse proxies in front of the web server whose X-Forwarded-For is trusted (0: none).
    trusted_proxies: int = 0
    metrics_token: str | None = field(default=None, repr=False)
    log_format: str = "text"
    # /readyz says `degraded` when the webhook dispatcher is further behind than this.
    outbox_lag_limit: float = 300.0

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
            webhook_allow_private=_flag(env.get("RESTOCK_WEBHOOK_ALLOW_PRIVATE", "off")),
            smtp_url=env.get("RESTOCK_SMTP_URL") or None,
            mail_from=env.get("RESTOCK_MAIL_FROM") or None,
            alexa_events_url=env.get("RESTOCK_ALEXA_EVENTS_URL") or None,
            alexa_events_client_id=env.get("RESTOCK_ALEXA_EVENTS_CLIENT_ID") or None,
            alexa_events_client_secret=env.get("RESTOCK_ALEXA_EVENTS_CLIENT_SECRET") or None,
            alexa_lwa_token_url=env.get(
                "RESTOCK_ALEXA_LWA_TOKEN_URL", "https://api.amazon.com/auth/o2/token"
            ),
            trusted_proxies=_hops(env.get("RESTOCK_TRUSTED_PROXIES", "0")),
            metrics_token=env.get("RESTOCK_METRICS_TOKEN") or None,
            log_format="json" if env.get("RESTOCK_LOG_FORMAT", "").lower() == "json" else "text",
            outbox_lag_limit=_seconds(env.get("RESTOCK_OUTBOX_LAG_LIMIT", "300")),
        )

    def with_secret_key(self) -> Settings:
        """Return settings whose secret key is set, generating one into var/ on first use."""
        if self.secret_key:
            return self
        path = self.var_dir / "secret_key"
        if not path.exists():
            make_private_dir(self.var_dir)
            # Created with 0600 so other local users can't forge sessions.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Anyone who read it may already forge sessions: fixing the mode is not enough.
            raise SettingsError(
                f"{path} is open to other users (mode {mode:04o}): delete it so a new key is "
                f"generated (signs everyone out), or set RESTOCK_SECRET_KEY; "
                f"`chmod 600 {path}` keeps the key if nobody else can have read it"
            )
        return replace(self, secret_key=path.read_text().strip())

    def refuse_unsafe(self) -> None:
        """Raise SettingsError for a combination that must never serve real traffic."""
        if not self.alexa_verify and self.public_url.startswith("https://"):
            raise SettingsError(
                "RESTOCK_ALEXA_VERIFY=off lets anyone order as any linked Alexa user; it is for "
                f"local testing only and refused with an https RESTOCK_PUBLIC_URL "
                f"({self.public_url}). Unset RESTOCK_ALEXA_VERIFY."
            )
