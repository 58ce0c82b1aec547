"""Alexa request verification: Amazon's documented checks, with `cryptography` and no framework."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import posixpath
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import verification as x509_verification

logger = logging.getLogger(__name__)

CERT_URL_SCHEME = "https"
CERT_URL_HOST = "s3.amazonaws.com"
CERT_URL_PATH_PREFIX = "/echo.api/"
ECHO_API_SAN = "echo-api.amazon.com"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
FETCH_TIMEOUT_SECONDS = 5.0
# A leaf and its intermediates fit in a few KB; the cap stops a bad response eating memory.
MAX_CHAIN_BYTES = 64 * 1024
DEFAULT_CACHE_ENTRIES = 32
# Only chains that passed every check enter; Amazon serves one or two at a time.
VALIDATED_CHAIN_ENTRIES = 8
DEFAULT_MAX_SKEW_SECONDS = 150

SIGNATURE_CERT_CHAIN_URL_HEADER = "signaturecertchainurl"
SIGNATURE_256_HEADER = "signature-256"

REASONS = frozenset(
    {
        "cert_url_missing",
        "cert_url_scheme",
        "cert_url_host",
        "cert_url_path",
        "cert_url_port",
        "cert_fetch",
        "cert_expired",
        "cert_san",
        "cert_chain",
        "cert_key_usage",
        "signature",
        "signature_missing",
        "timestamp",
        "application_id",
        "malformed",
    }
)

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


class VerificationError(Exception):
    """A request that is not provably a fresh Alexa request for us; `reason` names the rule."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown verification reason {reason!r}")
        # detail may quote request headers; it is capped so a hostile header cannot flood logs.
        detail = detail[:200]
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def validate_cert_chain_url(url: str) -> None:
    """Refuse a SignatureCertChainUrl that does not point into Amazon's echo.api bucket."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise VerificationError("cert_url_host", "unparseable URL") from exc
    if parts.scheme.lower() != CERT_URL_SCHEME:
        raise VerificationError("cert_url_scheme", parts.scheme)
    # hostname is already lowercased; user info is refused because it can hide the real host
    # from a careless reader and Amazon never sends it.
    if host != CERT_URL_HOST or parts.username is not None or parts.password is not None:
        raise VerificationError("cert_url_host", parts.netloc)
    try:
        port = parts.port
    except ValueError as exc:
        raise VerificationError("cert_url_port", parts.netloc) from exc
    if port not in (None, 443):
        raise VerificationError("cert_url_port", str(port))
    # Percent-decoding before resolving dot segments means an encoded `%2e%2e` cannot climb
    # out of /echo.api/ either; normpath also collapses `..` above the root, as RFC 3986 does.
    path = posixpath.normpath(unquote(parts.path)) if parts.path else ""
    if not path.startswith(CERT_URL_PATH_PREFIX):
        raise VerificationError("cert_url_path", parts.path)


def fetch_cert_chain(
    url: str,
    *,
    timeout: float = FETCH_TIMEOUT_SECONDS,
    max_bytes: int = MAX_CHAIN_BYTES,
) -> bytes:
    """Download the PEM chain at a validated Amazon URL, without redirects and with a size cap."""
    # Checked again here so this function can never be pointed anywhere else on its own.
    validate_cert_chain_url(url)
    chunks: list[bytes] = []
    size = 0
    try:
        # A redirect would lead away from the host we validated, so it counts as a failure.
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=False) as response:
            if response.status_code != 200:
                raise VerificationError("cert_fetch", f"HTTP {response.status_code}")
            for chunk in response.iter_content(chunk_size=8192):
                size += len(chunk)
                if size > max_bytes:
                    raise VerificationError("cert_fetch", f"chain larger than {max_bytes} bytes")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise VerificationError("cert_fetch", type(exc).__name__) from exc
    return b"".join(chunks)


class CertChainCache:
    """A bounded, thread-safe LRU of fetched chains keyed by URL; callable like a fetcher."""

    def __init__(
        self,
        fetch: Callable[[str], bytes] = fetch_cert_chain,
        max_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._fetch = fetch
        self._max_entries = max_entries
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        """Return the chain for url, fetching it only when it is not cached."""
        with self._lock:
            cached = self._entries.get(url)
            if cached is not None:
                self._entries.move_to_end(url)
                return cached
        # Fetched outside the lock so one slow download does not stall every other request;
        # two threads may fetch the same URL once each, which is harmless.
        pem = self._fetch(url)
        with self._lock:
            self._entries[url] = pem
            self._entries.move_to_end(url)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return pem

    def __len__(self) -> int:
        """Return how many chains are cached."""
        with self._lock:
            return len(self._entries)

    def __contains__(self, url: object) -> bool:
        """Return whether a chain for url is cached."""
        with self._lock:
            return url in self._entries


class ValidatedChains:
    """Leaves whose chain passed every check, by URL, kept until the chain's first expiry."""

    def __init__(self, max_entries: int = VALIDATED_CHAIN_ENTRIES) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[x509.Certificate, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, now: datetime) -> x509.Certificate | None:
        """Return the validated leaf for url while every certificate in its chain is valid."""
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            leaf, expires = entry
            if now > expires or now < leaf.not_valid_before_utc:
                del self._entries[url]
                return None
            self._entries.move_to_end(url)
            return leaf

    def remember(
        self, url: str, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate]
    ) -> None:
        """Keep a leaf whose chain was just validated, until its chain's first expiry."""
        expires = min(cert.not_valid_after_utc for cert in (leaf, *intermediates))
        with self._lock:
            self._entries[url] = (leaf, expires)
            self._entries.move_to_end(url)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


def default_ca_bundle_path() -> str:
    """Return certifi's CA bundle when installed (requests brings it), else the system bundle."""
    try:
        import certifi
    except ImportError:
        return SYSTEM_CA_BUNDLE
    return str(certifi.where())


def load_trusted_roots(path: str | None = None) -> list[x509.Certificate]:
    """Load a PEM CA bundle one certificate at a time, skipping any that cannot be parsed."""
    with open(path or default_ca_bundle_path(), "rb") as bundle:
        data = bundle.read()
    roots: list[x509.Certificate] = []
    # catch_warnings touches process-wide state; this runs once at start-up, not per request.
    with warnings.catch_warnings():
        # Real roots (GoDaddy/Starfield G2, the anchor of Amazon's cross-signed chain, among
        # them) carry serial number 0; cryptography 50 warns on parsing them, which would turn
        # into an error under `filterwarnings = error`. Loading per block means a future
        # release that refuses them outright drops only those roots, not the whole bundle.
        warnings.filterwarnings(
            "ignore", message="Parsed a serial number", category=CryptographyDeprecationWarning
        )
        for block in _PEM_CERTIFICATE.findall(data):
            try:
                roots.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                # Skipping a root we cannot read only narrows trust, never widens it.
                logger.debug("skipping an unreadable certificate in the CA bundle")
    if not roots:
        raise ValueError("the CA bundle holds no readable certificates")
    return roots


# Parsed chains are memoised by their bytes: a freshly parsed certificate reloads its public
# keys on first use, which made up most of a verification's cost. Failures are not cached.
@functools.lru_cache(maxsize=DEFAULT_CACHE_ENTRIES)
def _load_chain(pem: bytes) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """Split a served PEM chain into the leaf (first) and the untrusted intermediates."""
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise VerificationError("cert_chain", "unreadable PEM chain") from exc
    return certificates[0], tuple(certificates[1:])


def _check_leaf_validity(leaf: x509.Certificate, now: datetime) -> None:
    """Refuse a leaf that is expired or not yet valid (checked apart to get its own reason)."""
    if now < leaf.not_valid_before_utc:
        raise VerificationError("cert_expired", "leaf not yet valid")
    if now > leaf.not_valid_after_utc:
        raise VerificationError("cert_expired", "leaf expired")


def _check_leaf_san(leaf: x509.Certificate) -> None:
    """Refuse a leaf whose subjectAltName does not name echo-api.amazon.com."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("cert_san", "no subjectAltName") from exc
    except ValueError as exc:
        raise VerificationError("cert_chain", "unreadable extensions") from exc
    names = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    if ECHO_API_SAN not in names:
        raise VerificationError("cert_san", ", ".join(sorted(names)))


def _check_leaf_key_usage(leaf: x509.Certificate) -> None:
    """Refuse a leaf whose keyUsage is absent or does not allow digital signatures."""
    # cryptography's web PKI profile accepts an end-entity without digitalSignature (or with
    # no keyUsage at all), so this rule is ours. Amazon's leaf always carries the extension;
    # requiring it is stricter than RFC 5280's "absent means any".
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError("cert_key_usage", "no keyUsage") from exc
    except ValueError as exc:
        raise VerificationError("cert_chain", "unreadable extensions") from exc
    if not key_usage.digital_signature:
        raise VerificationError("cert_key_usage", "digitalSignature not allowed")


def _check_signature(leaf: x509.Certificate, signature: bytes, body: bytes) -> None:
    """Refuse a body whose Signature-256 is not the leaf's RSA PKCS#1 v1.5 SHA-256 signature."""
    public_key = leaf.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise VerificationError("signature", "leaf key is not RSA")
    try:
        public_key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise VerificationError("signature", "does not match the body") from exc


def _parse_envelope(body: bytes) -> dict[str, Any]:
    """Parse the request envelope, refusing anything that is not a JSON object with a request."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON and bad UTF-8; RecursionError covers absurd nesting.
        raise VerificationError("malformed", "body is not JSON") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("request"), dict):
        raise VerificationError("malformed", "no request object")
    return envelope


def _dig(value: Any, *keys: str) -> Any:
    """Return value[k1][k2]… or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class AlexaRequestVerifier:
    """Checks that a request is signed by Alexa, fresh, and meant for our skill."""

    def __init__(
        self,
        *,
        fetch: Callable[[str], bytes] | None = None,
        trusted_roots: Sequence[x509.Certificate] | None = None,
        clock: Callable[[], datetime] = utc_now,
        skill_id: str | None = None,
        verify_signature: bool = True,
        max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
    ) -> None:
        self._fetch: Callable[[str], bytes] = fetch if fetch is not None else CertChainCache()
        self._clock = clock
        self._skill_id = skill_id
        self._verify_signature = verify_signature
        self._max_skew = timedelta(seconds=max_skew_seconds)
        self._store: x509_verification.Store | None = None
        # Apart from the fetch cache: junk URLs never get in, so they can never push it out.
        self._validated = ValidatedChains()
        if verify_signature:
            roots = list(trusted_roots) if trusted_roots is not None else load_trusted_roots()
            if not roots:
                raise ValueError("at least one trusted root is needed")
            # Built once: a Store over the whole CA bundle is too costly to rebuild per request.
            self._store = x509_verification.Store(roots)
        else:
            logger.warning(
                "ALEXA SIGNATURE VERIFICATION IS OFF: anyone can send requests as Alexa. "
                "Use this for local testing only; timestamps and skill id are still checked."
            )

    def verify(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Return the parsed request envelope, or raise VerificationError naming the broken rule."""
        now = self._clock().astimezone(UTC)
        if self._verify_signature:
            lowered = {name.lower(): value for name, value in headers.items()}
            self._verify_signed_by_alexa(lowered, body, now)
        envelope = _parse_envelope(body)
        self._check_timestamp(envelope, now)
        self._check_application_id(envelope)
        return envelope

    def _verify_signed_by_alexa(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> None:
        """Run the certificate and signature checks, cheapest first, before any JSON is read."""
        url = headers.get(SIGNATURE_CERT_CHAIN_URL_HEADER)
        if not url:
            raise VerificationError("cert_url_missing")
        validate_cert_chain_url(url)
        encoded_signature = headers.get(SIGNATURE_256_HEADER)
        if not encoded_signature:
            raise VerificationError("signature_missing")
        try:
            signature = base64.b64decode(encoded_signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError("signature", "not base64") from exc
        # Header checks come first so an unsigned request never costs us a download.
        leaf = self._validated.get(url, now)
        if leaf is None:
            leaf, intermediates = _load_chain(self._fetch_chain(url))
            _check_leaf_validity(leaf, now)
            _check_leaf_san(leaf)
            _check_leaf_key_usage(leaf)
            self._check_chain(leaf, intermediates, now)
            self._validated.remember(url, leaf, intermediates)
        _check_signature(leaf, signature, body)

    def _fetch_chain(self, url: str) -> bytes:
        """Fetch the PEM chain, turning any failure of the fetcher into reason cert_fetch."""
        try:
            return self._fetch(url)
        except VerificationError:
            raise
        except Exception as exc:
            # Any fetcher failure (network, injected test double) means the chain is unproven;
            # it must refuse the request, never surface as a server error.
            raise VerificationError("cert_fetch", type(exc).__name__) from exc

    def _check_chain(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], now: datetime
    ) -> None:
        """Refuse a leaf that does not chain to a trusted root under the web PKI profile."""
        assert self._store is not None
        # ServerVerifier, not ClientVerifier, although Alexa's leaf plays a client-like role
        # (it signs requests to us). ClientVerifier wants the clientAuth EKU and does NOT
        # match the subjectAltName: it only hands the names back, so a leaf for any host
        # would pass. ServerVerifier matches DNSName(echo-api.amazon.com) against the SAN and
        # wants serverAuth (or no EKU), which every public TLS certificate carries, whereas
        # Chrome's root programme is phasing clientAuth out of them (2026-2027), so a
        # ClientVerifier would start refusing Amazon's renewed leaf. Neither verifier checks
        # keyUsage for digitalSignature; that is _check_leaf_key_usage. The time is always
        # set: left out, the builder takes its own "now" instead of our clock.
        verifier = (
            x509_verification.PolicyBuilder()
            .store(self._store)
            .time(now)
            .build_server_verifier(x509.DNSName(ECHO_API_SAN))
        )
        try:
            verifier.verify(leaf, list(intermediates))
        except x509_verification.VerificationError as exc:
            raise VerificationError("cert_chain", str(exc)) from exc

    def _check_timestamp(self, envelope: dict[str, Any], now: datetime) -> None:
        """Refuse a request whose timestamp is more than max_skew away from now, either way."""
        raw = _dig(envelope, "request", "timestamp")
        if not isinstance(raw, str):
            raise VerificationError("timestamp", "missing")
        try:
            timestamp = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise VerificationError("timestamp", "not ISO 8601") from exc
        if timestamp.tzinfo is None:
            # Alexa always sends UTC with a Z; a bare time is read the same way.
            timestamp = timestamp.replace(tzinfo=UTC)
        if abs(now - timestamp) > self._max_skew:
            raise VerificationError("timestamp", f"{raw} is too far from {now.isoformat()}")

    def _check_application_id(self, envelope: dict[str, Any]) -> None:
        """Refuse a request for another skill when our skill id is configured."""
        if self._skill_id is None:
            return
        # Alexa sends the id in context (every request) and in session (in-session requests);
        # every copy present must be ours.
        ids = [
            value
            for value in (
                _dig(envelope, "context", "System", "application", "applicationId"),
                _dig(envelope, "session", "application", "applicationId"),
            )
            if value is not None
        ]
        if not ids or any(value != self._skill_id for value in ids):
            raise VerificationError("application_id", "not this skill")
