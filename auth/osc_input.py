"""OSCORE input material (RFC 9203 §3.2.1) that a proof-of-possession device token carries."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

MS_BYTES = 16
SALT_BYTES = 8
ID_BYTES = 8


@dataclass(frozen=True)
class OscoreInput:
    """OSCORE input material (RFC 9203 §3.2.1): what the device needs beside its nonces."""

    ms: bytes
    salt: bytes
    id: bytes

    @classmethod
    def fresh(cls) -> OscoreInput:
        """New random material for one token."""
        return cls(
            secrets.token_bytes(MS_BYTES),
            secrets.token_bytes(SALT_BYTES),
            secrets.token_bytes(ID_BYTES),
        )

    def as_cnf(self, *, binary: bool) -> dict[str, object]:
        """The token response's `cnf` (`{osc: …}`): byte strings in CBOR, base64url in JSON."""

        def shown(value: bytes) -> object:
            return value if binary else base64.urlsafe_b64encode(value).rstrip(b"=").decode()

        return {"osc": {"id": shown(self.id), "ms": shown(self.ms), "salt": shown(self.salt)}}
