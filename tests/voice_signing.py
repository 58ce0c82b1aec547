"""Signing Alexa requests in tests with our own CA chain (the verifier tests' PKI builders)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from orders.store.db import utcnow
from tests.e2e.auth_helpers import serve
from tests.unit.test_alexa_verification import CERT_URL, Pki, _ca_certificate, _pem, _rsa_key

__all__ = ["CERT_URL", "AmazonBucket", "build_pki", "serve", "sign"]


def build_pki() -> Pki:
    """Root → intermediate CA, a leaf key, and a stranger key nobody trusts."""
    root_key, intermediate_key, leaf_key, other_key = (_rsa_key() for _ in range(4))
    root = _ca_certificate("Voice Test Root", root_key, "Voice Test Root", root_key)
    intermediate = _ca_certificate(
        "Voice Test Intermediate", intermediate_key, "Voice Test Root", root_key
    )
    stranger = _ca_certificate("Stranger Root", other_key, "Stranger Root", other_key)
    return Pki(root_key, root, intermediate_key, intermediate, leaf_key, other_key, stranger)


@dataclass
class AmazonBucket:
    """Stands in for s3.amazonaws.com/echo.api/: serves the chain and counts downloads."""

    pki: Pki
    downloads: list[str] = field(default_factory=list)

    def chain(self) -> bytes:
        """A leaf valid around the real now (the verifier's clock), then the intermediate."""
        now = utcnow()
        leaf = self.pki.issue_leaf(
            not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
        )
        return _pem(leaf, self.pki.intermediate)

    def __post_init__(self) -> None:
        self._pem = self.chain()

    def fetch(self, url: str) -> bytes:
        """The injectable fetcher: only CERT_URL exists."""
        self.downloads.append(url)
        if url != CERT_URL:
            raise requests.ConnectionError(f"nothing at {url}")
        return self._pem


def sign(body: bytes, key: rsa.RSAPrivateKey, url: str = CERT_URL) -> dict[str, str]:
    """The headers Alexa sends with a body: chain URL and base64 RSA-SHA256 signature."""
    signature = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    return {
        "SignatureCertChainUrl": url,
        "Signature-256": base64.b64encode(signature).decode(),
    }
