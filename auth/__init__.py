"""Accounts and the OAuth 2.0 authorization server; `verify_access_token` for every channel."""

from auth.principal import InvalidToken, Principal
from auth.tokens import verify_access_token

__all__ = ["InvalidToken", "Principal", "verify_access_token"]
