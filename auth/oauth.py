"""The OAuth 2.0 authorization server (Authlib, Flask) and everything auth mounts on the app."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import OAuth2Error
from flask import Blueprint, Flask, jsonify, render_template, request
from flask_limiter import Limiter
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from auth.endpoints import (
    DeviceAuthorizationEndpoint,
    IntrospectionEndpoint,
    RevocationEndpoint,
    server_metadata,
)
from auth.grants import (
    AuthorizationCodeGrant,
    Client,
    ClientCredentialsGrant,
    DeviceCodeGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from auth.limits import init_limiter, limits
from auth.link import make_link_blueprint
from auth.mail import Mailer
from auth.oauth_store import find_client
from auth.principal import SCOPE_TEXT, SCOPES
from auth.web import init_login
from orders.services.merchant import store_name
from orders.store.db import Database


class AuthServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server, backed by `auth.oauth_store` instead of an ORM session."""

    def __init__(self, db: Database, public_url: str) -> None:
        super().__init__(query_client=self._client, save_token=self._no_save)
        self.db = db
        self.public_url = public_url
        self.scopes_supported = list(SCOPES)

    def _client(self, client_id: str) -> Client | None:
        record = find_client(self.db, client_id)
        return Client(record) if record else None

    @staticmethod
    def _no_save(token: Any, request: Any) -> None:
        # Every grant here issues and stores its token in one transaction of its own.
        raise RuntimeError("tokens are stored by auth.oauth_store, never by Authlib")

    def load_config(self, config: Any) -> None:
        # Authlib reads OAUTH2_* settings here; ours come from Settings, so read none.
        self.register_token_generator("default", self._no_save)


class ConsentForm(FlaskForm):  # type: ignore[misc]
    """The consent page's form: only its CSRF token; `decision` comes from the button."""


# What a person reads when an app's link request can't go on (the code stays for developers).
OAUTH_ERROR_TEXT = {
    "invalid_client": "The app that sent you here is not one this store knows.",
    "unauthorized_client": "The app that sent you here may not link accounts this way.",
    "invalid_scope": "The app that sent you here asked for permissions this store doesn't give.",
    "unsupported_response_type": "The app that sent you here asked in a way we don't support.",
    "invalid_request": "The app that sent you here sent an incomplete or broken link request.",
}


def config_oauth(
    app: Flask,
    db: Database,
    *,
    public_url: str,
    secret_key: str,
    rate_limit_storage: str = "memory://",
    rate_limits_enabled: bool = True,
    mailer: Mailer | None = None,
) -> AuthServer:
    """Mount auth on `app`: rate limits, sign-in pages, the OAuth server and `/link`."""
    limiter = init_limiter(
        app, storage_uri=rate_limit_storage, secret_key=secret_key, enabled=rate_limits_enabled
    )
    init_login(app, db, limiter, mailer, public_url)
    server = AuthServer(db, public_url)
    server.init_app(app)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(DeviceCodeGrant)
    server.register_endpoint(DeviceAuthorizationEndpoint)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    app.register_blueprint(_oauth_blueprint(server, limiter))
    app.register_blueprint(make_link_blueprint(db, limiter))
    app.extensions["restock_oauth"] = server
    return server


def _oauth_blueprint(server: AuthServer, limiter: Limiter) -> Blueprint:
    """The OAuth endpoints; POSTs here are OAuth requests, not CSRF-protected HTML forms.

    Forms use FlaskForm's own CSRF check; if CSRFProtect is ever enabled app-wide, this
    blueprint must be exempted (`csrf.exempt(bp)`), or every OAuth client gets a 400.
    """
    bp = Blueprint("oauth", __name__, template_folder="templates")

    @bp.get("/.well-known/oauth-authorization-server")
    def metadata() -> Any:
        return jsonify(server_metadata(server.public_url))

    @bp.post("/oauth/token")
    @limiter.limit(lambda: limits().token)
    def token() -> Any:
        return server.create_token_response()

    @bp.post("/oauth/device_authorization")
    @limiter.limit(lambda: limits().device_authorization)
    def device_authorization() -> Any:
        return server.create_endpoint_response("device_authorization")

    @bp.post("/oauth/revoke")
    @limiter.limit(lambda: limits().token)
    def revoke() -> Any:
        return server.create_endpoint_response("revocation")

    @bp.post("/oauth/introspect")
    @limiter.limit(lambda: limits().token)
    def introspect() -> Any:
        return server.create_endpoint_response("introspection")

    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    @login_required  # type: ignore[untyped-decorator]
    def authorize() -> Any:
        user = current_user._get_current_object()
        try:
            grant = server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            if error.redirect_uri:  # only once the redirect URI matched the client's exactly
                return server.handle_error_response(None, error)
            page = render_template(
                "auth/oauth_error.html", error=error.error, description=error.description,
                human=OAUTH_ERROR_TEXT.get(error.error, OAUTH_ERROR_TEXT["invalid_request"]),
            )  # fmt: skip
            return page, 400
        client = grant.client.record
        # allows_grant refused storeless clients above, so every consent names a store.
        store = store_name(server.db, client.store_id) if client.store_id is not None else ""
        redirect_host = urlsplit(grant.redirect_uri).hostname or grant.redirect_uri
        scopes = [(s, SCOPE_TEXT.get(s, s)) for s in grant.request.scope.split()]
        form = ConsentForm()
        error_text = None
        if request.method == "POST":
            decision = request.form.get("decision")
            if not form.validate_on_submit() or decision not in ("approve", "deny"):
                error_text = "The form expired or was incomplete; please choose again."
            elif decision == "approve" and user.shopper_id is None:
                error_text = "Only a shopper account can be linked. Sign in as a shopper."
            else:
                granted = user if decision == "approve" else None
                return server.create_authorization_response(grant=grant, grant_user=granted)
        page = render_template(
            "auth/consent.html",
            form=form,
            client=client,
            store=store,
            redirect_host=redirect_host,
            scopes=scopes,
            error=error_text,
            is_shopper=user.shopper_id is not None,
        )
        return page, 400 if error_text else 200

    return bp
