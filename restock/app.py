"""create_app(): the one place the web side is wired together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, jsonify, render_template, request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from auth.http import problem
from orders.domain.errors import DomainError, InvalidRequest, NotAllowed, NotFound, OrderRefused
from orders.store.db import Database, make_engine, utcnow
from restock.settings import Settings

if TYPE_CHECKING:
    from voice_skill.verification import AlexaRequestVerifier

log = logging.getLogger("restock")

# No page runs script; inline <style> blocks remain. Consent and /link must never be framed
# (clickjacking a purchase approval). No form-action: Chrome applies it to the redirect
# after the OAuth consent POST, which goes to the client's (another origin's) redirect_uri.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000"
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: Flask-WTF's CSRF check over https needs our own Referer.
    "Referrer-Policy": "same-origin",
}

# Domain errors → HTTP status, in one table (STYLE.md §7).
STATUS_FOR: list[tuple[type[DomainError], int]] = [
    (NotFound, 404),
    (OrderRefused, 403),
    (NotAllowed, 409),
    (InvalidRequest, 400),
]


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    alexa_verifier: AlexaRequestVerifier | None = None,
) -> Flask:
    """Build the Flask app (web, OAuth, REST API, /alexa) over one database.

    `clock` is the time the voice skill decides by; `alexa_verifier` replaces the one the
    settings describe. Both exist so tests build this same app with a movable clock or a
    test certificate authority.
    """
    settings = settings or Settings.from_env()
    settings.refuse_unsafe()
    settings = settings.with_secret_key()
    db = db or Database(make_engine(settings.database_url))
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    # Checks /readyz runs beside the database's; `serve` adds the roles it runs in-process.
    app.extensions["restock"] = {"settings": settings, "db": db, "ready_checks": {}}
    if settings.trusted_proxies:
        # Only as many X-Forwarded-For hops as there are proxies of ours: any further
        # entries are the client's own words. Links people see come from public_url.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    _register_operations(app, settings, db)

    @app.get("/healthz")
    def healthz() -> Any:
        try:
            with db.read() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # the health check reports any database failure as unhealthy
            log.exception("health check failed")
            return problem(503, "unavailable", "the database does not answer")
        if not settings.alexa_verify:
            # Said here too, so a monitor sees a test-only setting left on in a deployment.
            return jsonify(status="ok", alexa_verification="off")
        return jsonify(status="ok")

    _register_errors(app)
    _register_page_helpers(app, db)
    _register_adapters(app, settings, db, clock, alexa_verifier)
    _register_security_headers(app, https=settings.public_url.startswith("https://"))
    return app


def _register_operations(app: Flask, settings: Settings, db: Database) -> None:
    """Request ids, request metrics, /readyz and (with a token) /metrics."""
    from restock import metrics
    from restock.operations import register

    if settings.metrics_token:
        metrics.install()
        metrics.watch_pool(db.engine)
    register(app, settings, db)


def _register_security_headers(app: Flask, *, https: bool) -> None:
    """Every response, error pages and problem+json included, carries the security headers."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # HSTS is ignored over plain http, and would pin a local http-only setup to https.
        if https or request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def _register_adapters(
    app: Flask,
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    alexa_verifier: AlexaRequestVerifier | None,
) -> None:
    """Mount each adapter's blueprint; adapters get their dependencies passed in."""
    # One block per adapter (auth, voice_skill, dashboard, device HTTP twin) below.
    from auth.mail import Mailer
    from auth.oauth import config_oauth

    config_oauth(
        app,
        db,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        rate_limit_storage=settings.rate_limit_storage,
        rate_limits_enabled=settings.rate_limits,
        mailer=Mailer(settings.smtp_url, settings.mail_from),
    )

    # Dashboard: shopper and merchant pages, and GET /api/v1/orders; its views reach the
    # database through app.extensions["restock"].
    from dashboard import bp as dashboard

    app.register_blueprint(dashboard)

    # voice_skill: the Alexa endpoint POST /alexa.
    _register_alexa(app, settings, db, clock, alexa_verifier)

    # device_hub's second transport: the device HTTP twin under /api/v1/device, rate limited
    # per device token and per address by the app's Flask-Limiter (set up by config_oauth).
    from device_hub.http_twin import make_twin_blueprint

    app.register_blueprint(make_twin_blueprint(db, app.extensions["restock_limiter"]))

    # Carrier aggregators' signed webhooks (POST /hooks/carriers/easypost/<store_id>).
    from dashboard.carrier_hooks import make_blueprint as make_carrier_hooks

    app.register_blueprint(make_carrier_hooks(db, app.extensions["restock_limiter"]))


def _register_alexa(
    app: Flask,
    settings: Settings,
    db: Database,
    clock: Callable[[], datetime],
    alexa_verifier: AlexaRequestVerifier | None,
) -> None:
    """Mount POST /alexa, or a 503 stand-in (logged loudly) when no skill id is configured."""
    from voice_skill.web import make_blueprint, make_unconfigured_blueprint, make_verifier

    if alexa_verifier is None and settings.alexa_verify and settings.alexa_skill_id is None:
        # Amazon requires the application id check; a fresh `make run` still starts, minus /alexa.
        log.error(
            "ALEXA SKILL DISABLED: RESTOCK_ALEXA_SKILL_ID is not set, so POST /alexa answers 503. "
            "Set it to your skill's id (amzn1.ask.skill.…) to serve Alexa."
        )
        app.register_blueprint(make_unconfigured_blueprint())
        return
    # With RESTOCK_ALEXA_VERIFY=off the verifier logs a loud warning as it is built (at start);
    # timestamps and the skill id (when set) are still checked.
    verifier = alexa_verifier or make_verifier(
        skill_id=settings.alexa_skill_id,
        verify_signature=settings.alexa_verify,
        rate_limit_storage=settings.rate_limit_storage,
    )
    app.register_blueprint(make_blueprint(db, verifier, clock=clock))


def _register_errors(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Response:
        status = next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), 400)
        if isinstance(exc, OrderRefused):
            return problem(status, "refused", exc.detail, reason=exc.reason)
        return problem(status, exc.reason, exc.detail)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        if _wants_html():
            page = render_template(
                "error.html", code=code, name=exc.name or "Error", detail=_human(code)
            )
            return Response(page, status=code, mimetype="text/html")
        response = problem(
            code, (exc.name or "error").lower().replace(" ", "_"), exc.description or ""
        )
        for name, value in exc.get_headers():  # a 405 names its methods in Allow (RFC 9110)
            if name.lower() != "content-type":
                response.headers[name] = value
        return response


# Machine endpoints always answer problem+json; a browser asking for a page gets HTML.
_MACHINE_PREFIXES = (
    "/api/",
    "/oauth/",
    "/alexa",
    "/.well-known/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/hooks/",
)
# What a person reads on an error page; the status name alone says little.
_HUMAN = {
    400: "Something in that request could not be understood. Go back and try again.",
    403: "This page is not open to your account.",
    404: "There is no page at this address. It may have moved, or the link may be mistyped.",
    405: "That page can't be used this way. Go back and use its buttons.",
    413: "That was more than this page accepts.",
    429: "Too many attempts in a short time. Please wait a minute and try again.",
    500: "Something went wrong on our side. Nothing you did caused it; please try again shortly.",
}


def _human(code: int) -> str:
    return _HUMAN.get(code, "That did not work. Please go back and try again.")


def _register_page_helpers(app: Flask, db: Database) -> None:
    """Helpers the shared layout (restock/templates/base.html) needs on every page."""
    from flask_wtf.csrf import generate_csrf

    from orders.services.merchant import store_name

    def store_label(store_id: int) -> str:
        names: dict[int, str] = g.setdefault("store_names", {})
        if store_id not in names:
            try:
                names[store_id] = store_name(db, store_id)
            except DomainError:
                names[store_id] = f"Store {store_id}"
        return names[store_id]

    @app.context_processor
    def page_helpers() -> dict[str, Any]:
        # One hidden input per form without an id, so a page of many forms has no
        # duplicate ids (WTForms renders id="csrf_token" on every form).
        return {"csrf_value": generate_csrf, "store_label": store_label}


def _wants_html() -> bool:
    if request.path.startswith(_MACHINE_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "text/html"
        and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]
    )
