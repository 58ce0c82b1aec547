"""Password hashing with argon2id."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A real hash to verify against when the account doesn't exist, so a login for an
    unknown email costs the same time as one for a known email (no user enumeration).
    Made on first use, not at import: every CLI command and process would pay ~0.1 s."""
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; constant work whether or not the hash exists."""
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for generated accounts (printed once, never stored in clear)."""
    return secrets.token_urlsafe(12)
