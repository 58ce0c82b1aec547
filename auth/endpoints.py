"""Authlib endpoints beside the token endpoint: device authorization, revocation, introspection."""

from __future__ import annotations

from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as _DeviceAuthorizationEndpoint

from auth.device_flow import DeviceFlowError, start_device_authorization
from auth.grants import ANY_METHOD, SECRET_METHODS, HasDatabase, oauth_error
from auth.oauth_store import DEVICE_GRANT, TokenRecord, find_token, revoke
from auth.principal import SCOPES

Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class HasSettings(HasDatabase):
    """The authorization server as the endpoints see it."""

    public_url: str


class DeviceAuthorizationEndpoint(_DeviceAuthorizationEndpoint):  # type: ignore[misc]
    """`/oauth/device_authorization` (RFC 8628 3.1), answered by `auth.device_flow`."""

    CLIENT_AUTH_METHODS = ANY_METHOD
    server: HasSettings

    def create_endpoint_response(self, request: Any) -> Response:
        client = self.authenticate_client(request)
        if not client.check_grant_type(DEVICE_GRANT):
            raise oauth_error(DeviceFlowError("unauthorized_client", "not a device client"))
        try:
            started = start_device_authorization(
                self.server.db,
                client_id=client.get_client_id(),
                public_url=self.server.public_url,
                serial=request.form.get("serial"),
                unit_secret=request.form.get("unit_secret"),
                scope=request.payload.scope or None,
            )
        except DeviceFlowError as exc:
            raise oauth_error(exc) from exc
        return 200, started.as_response(), default_json_headers


class RevocationEndpoint(_RevocationEndpoint):  # type: ignore[misc]
    """`/oauth/revoke` (RFC 7009); public device clients may revoke their own tokens."""

    CLIENT_AUTH_METHODS = ANY_METHOD
    server: HasDatabase

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        record = find_token(self.server.db, token_string, token_type_hint)
        return Token(record) if record else None

    def revoke_token(self, token: Token, request: Any) -> None:
        revoke(self.server.db, token.record)


class IntrospectionEndpoint(_IntrospectionEndpoint):  # type: ignore[misc]
    """`/oauth/introspect` (RFC 7662): authenticated (confidential) clients, their own tokens."""

    CLIENT_AUTH_METHODS = list(SECRET_METHODS)
    server: HasSettings

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        record = find_token(self.server.db, token_string, token_type_hint)
        return Token(record) if record else None

    def check_permission(self, token: Token, client: Any, request: Any) -> bool:
        return bool(token.record.client_id == client.get_client_id())

    def introspect_token(self, token: Token) -> dict[str, Any]:
        record = token.record
        body: dict[str, Any] = {
            "active": True,
            "client_id": record.client_id,
            "token_type": "refresh_token" if record.matched_refresh else "Bearer",
            "scope": record.scope,
            "iss": self.server.public_url,
            "exp": int(record.expires_at.timestamp()),
            "iat": int(record.issued_at.timestamp()),
            "kind": record.kind,
        }
        sub = _subject(record)
        if sub:
            body["sub"] = sub
        if record.store_id is not None:
            body["store_id"] = record.store_id
        if record.device_id is not None:
            body["device_id"] = record.device_id
        return body


class Token:
    """Authlib's view of a stored token."""

    def __init__(self, record: TokenRecord) -> None:
        self.record = record

    def check_client(self, client: Any) -> bool:
        return bool(self.record.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.record.scope

    def is_expired(self) -> bool:
        return not self.record.active

    def is_revoked(self) -> bool:
        return not self.record.active


def _subject(record: TokenRecord) -> str | None:
    if record.kind == "device" and record.device_id is not None:
        return f"device:{record.device_id}"
    if record.kind == "shopper" and record.shopper_id is not None:
        return f"shopper:{record.shopper_id}"
    if record.kind == "merchant" and record.store_id is not None:
        return f"store:{record.store_id}"
    return None


def server_metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata naming exactly what this server supports."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            DEVICE_GRANT,
            "client_credentials",
        ],
        "token_endpoint_auth_methods_supported": ANY_METHOD,
        "revocation_endpoint_auth_methods_supported": ANY_METHOD,
        "introspection_endpoint_auth_methods_supported": list(SECRET_METHODS),
        "code_challenge_methods_supported": ["S256"],
    }
