"""Rate limits (Flask-Limiter) on the cheap-to-send, unauthenticated surfaces of auth."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Flask, Response, current_app, render_template, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user

from auth.http import problem

CONFIG_KEY = "RESTOCK_RATE_LIMITS"
# Pages people see get an HTML 429; every other path (OAuth endpoints) problem+json.
HTML_PATHS = ("/login", "/link", "/signup")


@dataclass(frozen=True)
class RateLimits:
    """Limit strings (Flask-Limiter syntax) per surface; read per request from app.config."""

    login: str = "20 per minute"
    # Failed logins per account, from any address: slows a botnet guessing one password.
    failed_logins_per_account: str = "10 per 15 minutes"
    # Each sign-up costs a 64 MiB argon2 hash, and free accounts multiply per-account limits.
    signup: str = "10 per hour"
    token: str = "120 per minute"
    device_authorization: str = "30 per minute"
    link: str = "60 per minute"
    wrong_user_codes: str = "5 per minute"
    wrong_user_codes_per_address: str = "10 per minute"


def limits() -> RateLimits:
    """The limits in force for this app (tests swap `app.config[CONFIG_KEY]`)."""
    value = current_app.config.get(CONFIG_KEY)
    return value if isinstance(value, RateLimits) else RateLimits()


def client_address() -> str:
    """Who is asking, for per-address limits (waitress gives the peer address)."""
    return request.remote_addr or "unknown"


def login_email() -> str:
    """Per-account key for login attempts: a digest of the email typed (never the email)."""
    typed = request.form.get("email", "").strip().lower()[:320]
    return "login:" + hashlib.sha256(typed.encode()).hexdigest()[:32]


def signed_in_account() -> str:
    """Per-account key for limits on signed-in pages; the address when signed out."""
    if current_user.is_authenticated:
        return f"account:{current_user.get_id()}"
    return f"addr:{client_address()}"


def init_limiter(app: Flask, *, storage_uri: str, secret_key: str, enabled: bool) -> Limiter:
    """A Limiter on `app`: in memory by default, shared through `redis://…` when configured."""
    app.config.setdefault(CONFIG_KEY, RateLimits())
    # Counters are namespaced by a digest of the secret key: all workers of one deployment
    # share them, while two deployments (or two test apps) on one Redis never collide.
    prefix = "restock-" + hashlib.sha256(secret_key.encode()).hexdigest()[:12]
    limiter = Limiter(
        client_address,
        app=app,
        storage_uri=storage_uri or "memory://",
        strategy="moving-window",
        headers_enabled=True,
        key_prefix=prefix,
        enabled=enabled,
    )

    # Sharp edge: route decorators hold the Limiter only weakly, and a disabled Limiter is
    # not stored in app.extensions, so without this reference every limited view fails.
    app.extensions["restock_limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def too_many(_exc: RateLimitExceeded) -> Response | tuple[str, int]:
        # Flask-Limiter adds Retry-After and X-RateLimit-* to whatever we return.
        if request.path in HTML_PATHS:
            return render_template("auth/too_many.html"), 429
        return problem(429, "rate_limited", "too many requests; slow down")

    return limiter
