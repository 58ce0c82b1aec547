"""Authlib grants over our tables: each overrides only the storage hooks and the sharp edges."""

from __future__ import annotations

from typing import Any, Protocol

from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant

from auth.device_flow import DeviceFlowError, poll_device_token
from auth.oauth_store import (
    DEVICE_GRANT,
    ClientRecord,
    CodeRecord,
    GrantError,
    find_authorization_code,
    granted_scope,
    issue_client_token,
    redeem_authorization_code,
    rotate_refresh_token,
    save_authorization_code,
)
from auth.tokens import IssuedToken
from orders.store.db import Database

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
ANY_METHOD = [*SECRET_METHODS, "none"]


class HasDatabase(Protocol):
    """The authorization server as the grants see it."""

    db: Database


def oauth_error(exc: GrantError | DeviceFlowError) -> OAuth2Error:
    """Our refusal as Authlib's error (same error word, a plain-ASCII description)."""
    # Authlib raises ValueError (a 500) for descriptions outside RFC 6749's character set.
    detail = exc.detail.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "/")
    status = 401 if exc.error == "invalid_client" else 400
    return OAuth2Error(description=detail or None, status_code=status, error=exc.error)


class Client(ClientMixin):  # type: ignore[misc]
    """Authlib's view of a registered client."""

    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Sharp edge: Authlib falls back to a default redirect URI when the request has
        # none; we require one on every request so the token endpoint can match it exactly.
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        try:
            return granted_scope(self.record, scope)
        except GrantError:
            return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match: no prefix, no normalisation, no wildcard.
        return redirect_uri in self.record.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.record.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # Confidential clients (Alexa offers both Basic and POST) must use their secret;
        # public clients (device models, PKCE web apps) authenticate with `none`.
        if self.record.confidential:
            return method in SECRET_METHODS
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.record.allows_grant("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return self.record.allows_grant(grant_type)


class AuthCode:
    """Authlib's view of a stored authorization code."""

    def __init__(self, record: CodeRecord) -> None:
        self.record = record
        self.code_challenge = record.code_challenge
        self.code_challenge_method = record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, required of every client, public or confidential.

    Sharp edges in Authlib's CodeChallenge: a request without `code_challenge` passes
    even with required=True, a missing method means `plain`, and the verifier is only
    forced on public clients. Each is closed here.
    """

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self) -> None:
        super().__init__(required=True)
        self.CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge (S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256 (plain is refused)")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """Code grant (Alexa account linking, web apps) with single-use codes."""

    TOKEN_ENDPOINT_AUTH_METHODS = ANY_METHOD
    server: HasDatabase

    def save_authorization_code(self, code: str, request: Any) -> None:
        save_authorization_code(
            self.server.db,
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            account_id=request.user.id,
            code_challenge=request.payload.data["code_challenge"],
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        record = find_authorization_code(self.server.db, code, client.get_client_id())
        return AuthCode(record) if record else None

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        """Nothing to do: redeeming marked the code used in the token's own transaction."""

    def authenticate_user(self, authorization_code: AuthCode) -> int:
        return authorization_code.record.account_id

    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        # Sharp edge: Authlib saves the token and deletes the code in two steps, so two
        # racing requests could both succeed. Claiming the code and issuing is one step here.
        try:
            issued = redeem_authorization_code(
                self.server.db, self.request.authorization_code.record, self.request.client.record
            )
        except GrantError as exc:
            raise oauth_error(exc) from exc
        return 200, issued.as_response(), self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation: each refresh token works once; a replay revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ANY_METHOD
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: HasDatabase

    def validate_token_request(self) -> None:
        client = self._validate_request_client()
        self.request.client = client
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError("Missing 'refresh_token' in request.")

    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        try:
            issued = rotate_refresh_token(
                self.server.db,
                self.request.form["refresh_token"],
                self.request.client.record,
                self.request.payload.scope,
            )
        except GrantError as exc:
            raise oauth_error(exc) from exc
        return 200, issued.as_response(), self.TOKEN_RESPONSE_HEADER


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    """Client credentials for merchant API clients: a store-wide merchant token."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(SECRET_METHODS)
    server: HasDatabase

    def validate_token_request(self) -> None:
        super().validate_token_request()
        try:
            self.request.scope = granted_scope(self.client.record, self.request.payload.scope)
        except GrantError as exc:
            raise InvalidScopeError(exc.detail) from exc

    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        try:
            issued = issue_client_token(self.server.db, self.client.record, self.request.scope)
        except GrantError as exc:
            raise oauth_error(exc) from exc
        return 200, issued.as_response(), self.TOKEN_RESPONSE_HEADER


class DeviceCodeGrant(_DeviceCodeGrant):  # type: ignore[misc]
    """The device's poll (RFC 8628 3.4), answered by `auth.device_flow`.

    Sharp edges: Authlib would issue a token again for an approved device code on every
    poll and leaves `slow_down` to us; `poll_device_token` redeems a code once (row
    status) and counts the interval.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = ANY_METHOD
    GRANT_TYPE = DEVICE_GRANT
    server: HasDatabase

    def validate_token_request(self) -> None:
        if not self.request.payload.data.get("device_code"):
            raise InvalidRequestError("Missing 'device_code' in payload")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the device code grant")
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, object], list[tuple[str, str]]]:
        try:
            issued: IssuedToken = poll_device_token(
                self.server.db,
                client_id=self.client.get_client_id(),
                device_code=self.request.payload.data["device_code"],
            )
        except DeviceFlowError as exc:
            if exc.error == "invalid_grant":
                raise InvalidGrantError(exc.detail) from exc
            raise oauth_error(exc) from exc
        return 200, issued.as_response(), self.TOKEN_RESPONSE_HEADER
