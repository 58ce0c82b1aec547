"""Alexa request verification: every documented rule, broken alone, refuses the request."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from voice_skill.verification import (
    REASONS,
    AlexaRequestVerifier,
    CertChainCache,
    VerificationError,
    fetch_cert_chain,
    load_trusted_roots,
    validate_cert_chain_url,
)

NOW = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
CERT_URL = "https://s3.amazonaws.com/echo.api/echo-api-cert-14.pem"
SKILL_ID = "amzn1.ask.skill.5c3e1d7a-0f44-4b7e-9a11-6d2f0c8e9b21"
OTHER_SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-000000000000"
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


def _name(common_name: str) -> x509.Name:
    """Return a distinguished name holding only a common name."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, digital_signature: bool, ca: bool) -> x509.KeyUsage:
    """Return a keyUsage for a CA (certificate signing) or a leaf (TLS-style)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


LEAF_KEY_USAGE = _key_usage(digital_signature=True, ca=False)


def _ca_certificate(
    name: str,
    key: rsa.RSAPrivateKey,
    issuer_name: str,
    issuer_key: rsa.RSAPrivateKey,
) -> x509.Certificate:
    """Issue a CA certificate in the web PKI profile (self-signed when issuer is key)."""
    return (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=3650))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Pki:
    """Our own root → intermediate → leaf hierarchy, plus keys and a root nobody chains to."""

    root_key: rsa.RSAPrivateKey
    root: x509.Certificate
    intermediate_key: rsa.RSAPrivateKey
    intermediate: x509.Certificate
    leaf_key: rsa.RSAPrivateKey
    other_key: rsa.RSAPrivateKey
    stranger_root: x509.Certificate

    def issue_leaf(
        self,
        *,
        san: tuple[str, ...] | None = ("echo-api.amazon.com",),
        key_usage: x509.KeyUsage | None = LEAF_KEY_USAGE,
        eku: tuple[x509.ObjectIdentifier, ...] | None = (SERVER_AUTH, CLIENT_AUTH),
        not_before: datetime = NOW - timedelta(days=30),
        not_after: datetime = NOW + timedelta(days=300),
    ) -> x509.Certificate:
        """Issue an Alexa-like leaf from the intermediate; keyword arguments break one thing."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("echo-api.amazon.com"))
            .issuer_name(self.intermediate.subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.leaf_key.public_key()),
                critical=False,
            )
        )
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        if san is not None:
            names = [x509.DNSName(name) for name in san]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        if eku is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        return builder.sign(self.intermediate_key, hashes.SHA256())


def _rsa_key() -> rsa.RSAPrivateKey:
    """Generate an RSA 2048 key, the smallest the web PKI profile accepts."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def pki() -> Pki:
    """Build the hierarchy once per session: RSA key generation is the slow part."""
    root_key, intermediate_key, leaf_key, other_key = (_rsa_key() for _ in range(4))
    root = _ca_certificate("Restock Test Root", root_key, "Restock Test Root", root_key)
    intermediate = _ca_certificate(
        "Restock Test Intermediate", intermediate_key, "Restock Test Root", root_key
    )
    stranger_root = _ca_certificate("Stranger Root", other_key, "Stranger Root", other_key)
    return Pki(
        root_key=root_key,
        root=root,
        intermediate_key=intermediate_key,
        intermediate=intermediate,
        leaf_key=leaf_key,
        other_key=other_key,
        stranger_root=stranger_root,
    )


def _envelope(timestamp: str = "2026-11-24T08:00:00Z") -> dict[str, Any]:
    """Return an IntentRequest envelope shaped like the ones Alexa sends."""
    application = {"applicationId": SKILL_ID}
    user = {"userId": "amzn1.ask.account.TESTUSER", "accessToken": "at-123"}
    return {
        "version": "1.0",
        "session": {
            "new": False,
            "sessionId": "amzn1.echo-api.session.7f0c2e1a",
            "application": dict(application),
            "attributes": {},
            "user": dict(user),
        },
        "context": {
            "System": {
                "application": dict(application),
                "user": dict(user),
                "device": {"deviceId": "amzn1.ask.device.TESTDEVICE", "supportedInterfaces": {}},
                "apiEndpoint": "https://api.amazonalexa.com",
            }
        },
        "request": {
            "type": "IntentRequest",
            "requestId": "amzn1.echo-api.request.0b6f3c4d",
            "timestamp": timestamp,
            "locale": "en-US",
            "dialogState": "COMPLETED",
            "intent": {
                "name": "BuyIntent",
                "confirmationStatus": "NONE",
                "slots": {
                    "quantity": {"name": "quantity", "value": "2"},
                    "product": {"name": "product", "value": "coffee pods"},
                },
            },
        },
    }


def _pem(*certificates: x509.Certificate) -> bytes:
    """Concatenate certificates as a PEM chain file, in the order given."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclass
class Scenario:
    """One request as Alexa would send it; each test breaks exactly one field."""

    pki: Pki
    leaf: x509.Certificate
    intermediates: list[x509.Certificate]
    trusted_roots: list[x509.Certificate]
    envelope: dict[str, Any] = field(default_factory=_envelope)
    url: str = CERT_URL
    raw_body: bytes | None = None
    signing_key: rsa.RSAPrivateKey | None = None
    tamper: Callable[[bytes], bytes] | None = None
    served: dict[str, bytes] | None = None
    drop_headers: tuple[str, ...] = ()
    extra_headers: dict[str, str] = field(default_factory=dict)
    skill_id: str | None = SKILL_ID
    verify_signature: bool = True
    fetched: list[str] = field(default_factory=list)

    def body(self) -> bytes:
        """Return the body Alexa signs: the envelope JSON unless a raw body was set."""
        if self.raw_body is not None:
            return self.raw_body
        return json.dumps(self.envelope).encode()

    def fetch(self, url: str) -> bytes:
        """Serve the chain like Amazon's bucket would, recording every download."""
        self.fetched.append(url)
        bucket = self.served if self.served is not None else {CERT_URL: self.chain_pem()}
        if url not in bucket:
            raise requests.ConnectionError(f"nothing at {url}")
        return bucket[url]

    def chain_pem(self) -> bytes:
        """Return the leaf followed by the intermediates, the way Amazon serves them."""
        return _pem(self.leaf, *self.intermediates)

    def headers(self, signed: bytes) -> dict[str, str]:
        """Return the request headers Alexa sends for a body."""
        key = self.signing_key or self.pki.leaf_key
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": "application/json",
            "SignatureCertChainUrl": self.url,
            "Signature-256": base64.b64encode(signature).decode(),
        }
        headers.update(self.extra_headers)
        return {k: v for k, v in headers.items() if k not in self.drop_headers}

    def verifier(self) -> AlexaRequestVerifier:
        """Return a verifier wired to this scenario's bucket, roots and fixed clock."""
        return AlexaRequestVerifier(
            fetch=self.fetch,
            trusted_roots=self.trusted_roots,
            clock=lambda: NOW,
            skill_id=self.skill_id,
            verify_signature=self.verify_signature,
        )

    def send(self) -> dict[str, Any]:
        """Sign the body, apply any tampering, and run the verifier over it."""
        signed = self.body()
        sent = self.tamper(signed) if self.tamper is not None else signed
        return self.verifier().verify(self.headers(signed), sent)


@pytest.fixture
def scenario(pki: Pki) -> Scenario:
    """Return a correctly signed, fresh request for our skill."""
    return Scenario(
        pki=pki,
        leaf=pki.issue_leaf(),
        intermediates=[pki.intermediate],
        trusted_roots=[pki.root],
    )


def _refusal(scenario: Scenario) -> VerificationError:
    """Send the scenario and return the refusal it must produce."""
    with pytest.raises(VerificationError) as caught:
        scenario.send()
    assert caught.value.reason in REASONS
    return caught.value


Breaker = Callable[[Scenario], None]


def _set(**changes: Any) -> Breaker:
    """Return a breaker that sets scenario attributes."""

    def breaker(scenario: Scenario) -> None:
        for name, value in changes.items():
            setattr(scenario, name, value)

    return breaker


def _leaf(**changes: Any) -> Breaker:
    """Return a breaker that reissues the leaf with one property changed."""

    def breaker(scenario: Scenario) -> None:
        scenario.leaf = scenario.pki.issue_leaf(**changes)

    return breaker


def _request_field(name: str, value: Any) -> Breaker:
    """Return a breaker that changes (or, with None, removes) a field of envelope.request."""

    def breaker(scenario: Scenario) -> None:
        if value is None:
            del scenario.envelope["request"][name]
        else:
            scenario.envelope["request"][name] = value

    return breaker


def _application_id(*path: str) -> Breaker:
    """Return a breaker that puts another skill's id at one place in the envelope."""

    def breaker(scenario: Scenario) -> None:
        node = scenario.envelope
        for key in path:
            node = node[key]
        node["applicationId"] = OTHER_SKILL_ID

    return breaker


def _untrusted_root(scenario: Scenario) -> None:
    """Trust only a root that never issued our intermediate."""
    scenario.trusted_roots = [scenario.pki.stranger_root]


def _signed_by_other_key(scenario: Scenario) -> None:
    """Sign with a key that is not the leaf's."""
    scenario.signing_key = scenario.pki.other_key


def _unreachable_bucket(scenario: Scenario) -> None:
    """Serve nothing at the certificate URL."""
    scenario.served = {}


def _garbage_chain(scenario: Scenario) -> None:
    """Serve something that is not a PEM chain."""
    scenario.served = {CERT_URL: b"<Error><Code>AccessDenied</Code></Error>"}


def _change_quantity(body: bytes) -> bytes:
    """Change the body after it was signed, keeping it valid JSON."""
    return body.replace(b'"value": "2"', b'"value": "9"')


EXPIRED = {"not_before": NOW - timedelta(days=400), "not_after": NOW - timedelta(seconds=1)}
NOT_YET_VALID = {"not_before": NOW + timedelta(seconds=1), "not_after": NOW + timedelta(days=400)}
NO_DIGITAL_SIGNATURE = {"key_usage": _key_usage(digital_signature=False, ca=False)}

BROKEN_ALONE = [
    pytest.param(
        _set(url="http://s3.amazonaws.com/echo.api/echo-api-cert-14.pem"),
        "cert_url_scheme",
        id="url_scheme_is_http",
    ),
    pytest.param(
        _set(url="https://notamazon.com/echo.api/echo-api-cert-14.pem"),
        "cert_url_host",
        id="url_host_is_not_s3",
    ),
    pytest.param(
        _set(url="https://s3.amazonaws.com.evil.example/echo.api/cert.pem"),
        "cert_url_host",
        id="url_host_only_starts_like_s3",
    ),
    pytest.param(
        _set(url="https://s3.amazonaws.com/invalid.path/echo-api-cert-14.pem"),
        "cert_url_path",
        id="url_path_outside_echo_api",
    ),
    pytest.param(
        _set(url="https://s3.amazonaws.com/EcHo.aPi/echo-api-cert-14.pem"),
        "cert_url_path",
        id="url_path_in_other_case",
    ),
    pytest.param(
        _set(url="https://s3.amazonaws.com/echo.api/../invalid.path/cert.pem"),
        "cert_url_path",
        id="url_path_escapes_with_dot_dot",
    ),
    pytest.param(
        _set(url="https://s3.amazonaws.com:563/echo.api/echo-api-cert-14.pem"),
        "cert_url_port",
        id="url_port_is_563",
    ),
    pytest.param(
        _set(drop_headers=("SignatureCertChainUrl",)), "cert_url_missing", id="url_header_missing"
    ),
    pytest.param(_unreachable_bucket, "cert_fetch", id="chain_cannot_be_fetched"),
    pytest.param(_garbage_chain, "cert_chain", id="chain_is_not_pem"),
    pytest.param(_leaf(**EXPIRED), "cert_expired", id="leaf_expired"),
    pytest.param(_leaf(**NOT_YET_VALID), "cert_expired", id="leaf_not_yet_valid"),
    pytest.param(_leaf(san=("evil.example",)), "cert_san", id="leaf_san_names_another_host"),
    pytest.param(_leaf(san=None), "cert_san", id="leaf_without_san"),
    pytest.param(_untrusted_root, "cert_chain", id="chain_ends_at_untrusted_root"),
    pytest.param(_set(intermediates=[]), "cert_chain", id="intermediate_missing"),
    pytest.param(
        _leaf(**NO_DIGITAL_SIGNATURE), "cert_key_usage", id="key_usage_without_digital_signature"
    ),
    pytest.param(_leaf(key_usage=None), "cert_key_usage", id="key_usage_missing"),
    pytest.param(_set(tamper=_change_quantity), "signature", id="body_tampered_after_signing"),
    pytest.param(_signed_by_other_key, "signature", id="signed_by_another_key"),
    pytest.param(
        _set(extra_headers={"Signature-256": "not*base64!"}), "signature", id="signature_not_base64"
    ),
    pytest.param(
        _set(drop_headers=("Signature-256",)), "signature_missing", id="signature_header_missing"
    ),
    pytest.param(
        _request_field("timestamp", "2026-11-24T07:57:29Z"),
        "timestamp",
        id="timestamp_151_seconds_old",
    ),
    pytest.param(
        _request_field("timestamp", "2026-11-24T08:02:31Z"),
        "timestamp",
        id="timestamp_151_seconds_ahead",
    ),
    pytest.param(_request_field("timestamp", None), "timestamp", id="timestamp_missing"),
    pytest.param(
        _request_field("timestamp", "yesterday"), "timestamp", id="timestamp_not_iso_8601"
    ),
    pytest.param(
        _application_id("context", "System", "application"),
        "application_id",
        id="context_application_id_is_another_skill",
    ),
    pytest.param(
        _application_id("session", "application"),
        "application_id",
        id="session_application_id_is_another_skill",
    ),
    pytest.param(
        _set(raw_body=b'{"version": "1.0", "request": {'), "malformed", id="signed_body_is_not_json"
    ),
    pytest.param(_set(raw_body=b"[1, 2, 3]"), "malformed", id="signed_body_is_not_an_object"),
]


@pytest.mark.parametrize(("breaker", "reason"), BROKEN_ALONE)
def test_request_breaking_one_rule_is_refused_with_that_rules_reason(
    scenario: Scenario, breaker: Breaker, reason: str
) -> None:
    """Each rule, broken while everything else is right, refuses with its own reason."""
    breaker(scenario)
    assert _refusal(scenario).reason == reason


def test_correctly_signed_fresh_request_for_our_skill_passes(scenario: Scenario) -> None:
    """A request with every rule satisfied returns the parsed envelope."""
    assert scenario.send() == scenario.envelope
    assert scenario.fetched == [CERT_URL]


@pytest.mark.parametrize(
    "eku",
    [
        pytest.param((SERVER_AUTH, CLIENT_AUTH), id="server_and_client_auth"),
        pytest.param((SERVER_AUTH,), id="server_auth_only"),
        pytest.param(None, id="no_eku"),
    ],
)
def test_leaf_with_a_public_tls_eku_passes(scenario: Scenario, eku: Any) -> None:
    """Amazon's leaf is a public TLS certificate; with or without clientAuth it verifies."""
    scenario.leaf = scenario.pki.issue_leaf(eku=eku)
    assert scenario.send() == scenario.envelope


def test_leaf_with_client_auth_eku_only_is_refused(scenario: Scenario) -> None:
    """ServerVerifier wants serverAuth, so a client-only leaf fails the chain check."""
    scenario.leaf = scenario.pki.issue_leaf(eku=(CLIENT_AUTH,))
    assert _refusal(scenario).reason == "cert_chain"


def test_chain_served_with_its_root_appended_passes(scenario: Scenario) -> None:
    """A chain file that also carries the root still verifies against the trusted copy."""
    scenario.intermediates = [scenario.pki.intermediate, scenario.pki.root]
    assert scenario.send() == scenario.envelope


def test_san_among_several_names_in_any_case_passes(scenario: Scenario) -> None:
    """The SAN check looks for echo-api.amazon.com among all names, case-insensitively."""
    scenario.leaf = scenario.pki.issue_leaf(san=("alexa.amazon.com", "Echo-API.Amazon.com"))
    assert scenario.send() == scenario.envelope


@pytest.mark.parametrize(
    "case",
    [str.lower, str.upper],
    ids=["lower", "upper"],
)
def test_header_names_are_matched_in_any_case(
    scenario: Scenario, case: Callable[[str], str]
) -> None:
    """Header lookup ignores case, as HTTP does."""
    body = scenario.body()
    headers = {case(name): value for name, value in scenario.headers(body).items()}
    assert scenario.verifier().verify(headers, body) == scenario.envelope


@pytest.mark.parametrize(
    "timestamp",
    ["2026-11-24T07:57:30Z", "2026-11-24T08:02:30Z", "2026-11-24T08:00:00.250Z"],
    ids=["150_seconds_old", "150_seconds_ahead", "fractional_seconds"],
)
def test_timestamp_within_150_seconds_passes(scenario: Scenario, timestamp: str) -> None:
    """The skew limit is inclusive in both directions."""
    scenario.envelope["request"]["timestamp"] = timestamp
    assert scenario.send() == scenario.envelope


def test_any_skill_id_passes_when_none_is_configured(scenario: Scenario) -> None:
    """Without RESTOCK_ALEXA_SKILL_ID the application id is not compared."""
    scenario.skill_id = None
    _application_id("context", "System", "application")(scenario)
    assert scenario.send() == scenario.envelope


def test_request_without_any_application_id_is_refused_when_skill_id_is_set(
    scenario: Scenario,
) -> None:
    """A configured skill id must be matched by a present id, not by an absent one."""
    del scenario.envelope["context"]["System"]["application"]
    del scenario.envelope["session"]
    assert _refusal(scenario).reason == "application_id"


def test_out_of_session_request_with_our_id_in_context_passes(scenario: Scenario) -> None:
    """Requests outside a session carry the id only in context."""
    del scenario.envelope["session"]
    assert scenario.send() == scenario.envelope


class TestWithSignatureVerificationOff:
    """RESTOCK_ALEXA_VERIFY=off skips certificates and signatures, nothing else."""

    @pytest.fixture
    def unsigned(self, scenario: Scenario) -> Scenario:
        """Return a scenario whose verifier skips signatures and whose request is unsigned."""
        scenario.verify_signature = False
        scenario.drop_headers = ("SignatureCertChainUrl", "Signature-256")
        return scenario

    def test_unsigned_fresh_request_passes_without_fetching(self, unsigned: Scenario) -> None:
        """Nothing is downloaded and no header is needed."""
        assert unsigned.send() == unsigned.envelope
        assert unsigned.fetched == []

    @pytest.mark.parametrize(
        "timestamp", ["2026-11-24T07:57:29Z", "2026-11-24T08:02:31Z"], ids=["old", "ahead"]
    )
    def test_stale_timestamp_is_still_refused(self, unsigned: Scenario, timestamp: str) -> None:
        """The timestamp check stays on."""
        unsigned.envelope["request"]["timestamp"] = timestamp
        assert _refusal(unsigned).reason == "timestamp"

    def test_other_skill_is_still_refused(self, unsigned: Scenario) -> None:
        """The application id check stays on."""
        _application_id("context", "System", "application")(unsigned)
        assert _refusal(unsigned).reason == "application_id"

    def test_malformed_json_is_still_refused(self, unsigned: Scenario) -> None:
        """A body that is not JSON is refused as malformed rather than crashing."""
        unsigned.raw_body = b"\xff\xfe not json"
        assert _refusal(unsigned).reason == "malformed"

    def test_absurdly_nested_json_is_refused(self, unsigned: Scenario) -> None:
        """Nesting deep enough to exhaust the recursion limit is refused as malformed."""
        unsigned.raw_body = b"[" * 100_000 + b"]" * 100_000
        assert _refusal(unsigned).reason == "malformed"


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
        "HTTPS://s3.amazonaws.com/echo.api/echo-api-cert.pem",
        "https://S3.AMAZONAWS.COM/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem",
        "https://s3.amazonaws.com/echo.api/./sub/../echo-api-cert.pem",
    ],
)
def test_cert_chain_url_in_amazons_bucket_is_accepted(url: str) -> None:
    """Scheme and host in any case, port 443, and dot segments resolving inside are valid."""
    validate_cert_chain_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://s3.amazonaws.com/echo.api/echo-api-cert.pem", "cert_url_scheme"),
        ("ftp://s3.amazonaws.com/echo.api/echo-api-cert.pem", "cert_url_scheme"),
        ("s3.amazonaws.com/echo.api/echo-api-cert.pem", "cert_url_scheme"),
        ("https://notamazon.com/echo.api/echo-api-cert.pem", "cert_url_host"),
        ("https://s3.amazonaws.com.evil.example/echo.api/cert.pem", "cert_url_host"),
        ("https://user@s3.amazonaws.com/echo.api/echo-api-cert.pem", "cert_url_host"),
        ("https://s3.amazonaws.com@evil.example/echo.api/cert.pem", "cert_url_host"),
        ("https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem", "cert_url_path"),
        ("https://s3.amazonaws.com/invalid.path/echo-api-cert.pem", "cert_url_path"),
        ("https://s3.amazonaws.com/echo.api/../invalid.path/cert.pem", "cert_url_path"),
        ("https://s3.amazonaws.com/echo.api/%2e%2e/invalid.path/cert.pem", "cert_url_path"),
        ("https://s3.amazonaws.com/echo.api", "cert_url_path"),
        ("https://s3.amazonaws.com", "cert_url_path"),
        ("https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem", "cert_url_port"),
        ("https://s3.amazonaws.com:80/echo.api/echo-api-cert.pem", "cert_url_port"),
        ("https://s3.amazonaws.com:https/echo.api/echo-api-cert.pem", "cert_url_port"),
    ],
)
def test_cert_chain_url_outside_amazons_bucket_is_refused(url: str, reason: str) -> None:
    """Every way out of https://s3.amazonaws.com/echo.api/ is refused with its reason."""
    with pytest.raises(VerificationError) as caught:
        validate_cert_chain_url(url)
    assert caught.value.reason == reason


class CountingFetch:
    """A fetch double that serves fixed bytes per URL and counts downloads."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        """Return bytes derived from the URL, or fail for a URL containing 'broken'."""
        self.calls.append(url)
        if "broken" in url:
            raise VerificationError("cert_fetch", "HTTP 404")
        return url.encode()


def test_cache_does_not_refetch_a_cached_url() -> None:
    """A second lookup of the same URL is served from memory."""
    fetch = CountingFetch()
    cache = CertChainCache(fetch)
    assert cache("https://a") == cache("https://a") == b"https://a"
    assert fetch.calls == ["https://a"]


def test_cache_is_bounded_and_evicts_the_least_recently_used_url() -> None:
    """Past max_entries the entry used longest ago goes, and only it is fetched again."""
    fetch = CountingFetch()
    cache = CertChainCache(fetch, max_entries=2)
    cache("https://a")
    cache("https://b")
    cache("https://a")
    cache("https://c")
    assert len(cache) == 2
    assert "https://b" not in cache
    cache("https://a")
    cache("https://b")
    assert fetch.calls == ["https://a", "https://b", "https://c", "https://b"]


def test_cache_default_bound_is_32_entries() -> None:
    """The default cache never holds more than 32 chains."""
    cache = CertChainCache(CountingFetch())
    for number in range(100):
        cache(f"https://{number}")
    assert len(cache) == 32


def test_cache_does_not_keep_failed_fetches() -> None:
    """A failure is raised every time, so a transient error is retried on the next request."""
    fetch = CountingFetch()
    cache = CertChainCache(fetch)
    for _ in range(2):
        with pytest.raises(VerificationError):
            cache("https://broken")
    assert len(cache) == 0
    assert fetch.calls == ["https://broken", "https://broken"]


def test_verifier_behind_a_cache_downloads_the_chain_once(scenario: Scenario) -> None:
    """Two requests signed with the same chain cost one download."""
    body = scenario.body()
    verifier = AlexaRequestVerifier(
        fetch=CertChainCache(scenario.fetch),
        trusted_roots=scenario.trusted_roots,
        clock=lambda: NOW,
        skill_id=SKILL_ID,
    )
    for _ in range(2):
        verifier.verify(scenario.headers(body), body)
    assert scenario.fetched == [CERT_URL]


class FakeResponse:
    """A streamed requests response double."""

    def __init__(self, status_code: int, chunks: list[bytes]) -> None:
        self.status_code = status_code
        self._chunks = chunks

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """Yield the prepared chunks."""
        yield from self._chunks


@pytest.fixture
def fake_get(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], list[dict[str, Any]]]:
    """Replace requests.get for one test; return an installer whose list records each call."""

    def install(outcome: Any) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def get(url: str, **kwargs: Any) -> FakeResponse:
            calls.append({"url": url, **kwargs})
            if isinstance(outcome, Exception):
                raise outcome
            assert isinstance(outcome, FakeResponse)
            return outcome

        monkeypatch.setattr(requests, "get", get)
        return calls

    return install


def test_fetch_downloads_with_a_timeout_and_without_redirects(
    fake_get: Callable[[Any], list[dict[str, Any]]],
) -> None:
    """The real fetcher streams the body with a timeout and refuses to follow redirects."""
    calls = fake_get(FakeResponse(200, [b"-----BEGIN", b" CERTIFICATE-----"]))
    assert fetch_cert_chain(CERT_URL) == b"-----BEGIN CERTIFICATE-----"
    assert calls == [{"url": CERT_URL, "timeout": 5.0, "stream": True, "allow_redirects": False}]


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(FakeResponse(404, []), id="not_found"),
        pytest.param(FakeResponse(302, []), id="redirect"),
        pytest.param(FakeResponse(200, [b"x" * 40_000, b"x" * 40_000]), id="oversized"),
        pytest.param(requests.Timeout("slow"), id="timeout"),
        pytest.param(requests.ConnectionError("down"), id="connection_error"),
    ],
)
def test_fetch_failure_is_refused_as_cert_fetch(
    fake_get: Callable[[Any], list[dict[str, Any]]], outcome: Any
) -> None:
    """Non-200, redirects, oversized bodies and network errors all mean reason cert_fetch."""
    fake_get(outcome)
    with pytest.raises(VerificationError) as caught:
        fetch_cert_chain(CERT_URL)
    assert caught.value.reason == "cert_fetch"


def test_fetch_never_contacts_a_url_outside_amazons_bucket(
    fake_get: Callable[[Any], list[dict[str, Any]]],
) -> None:
    """The fetcher validates the URL itself before any network call."""
    calls = fake_get(FakeResponse(200, [b"pem"]))
    with pytest.raises(VerificationError) as caught:
        fetch_cert_chain("https://evil.example/echo.api/cert.pem")
    assert caught.value.reason == "cert_url_host"
    assert calls == []


def test_default_trust_store_loads_without_warnings_and_holds_amazons_roots() -> None:
    """certifi's bundle parses under filterwarnings=error and includes Amazon Root CA 1."""
    roots = load_trusted_roots()
    subjects = {root.subject.rfc4514_string() for root in roots}
    assert "CN=Amazon Root CA 1,O=Amazon,C=US" in subjects


def test_default_verifier_builds_from_the_installed_bundle() -> None:
    """The production defaults construct without network access."""
    AlexaRequestVerifier(skill_id=SKILL_ID)


def test_verifier_without_trusted_roots_is_refused_at_construction() -> None:
    """An empty trust store is a configuration error, not a refusal of every request."""
    with pytest.raises(ValueError):
        AlexaRequestVerifier(fetch=CountingFetch(), trusted_roots=[])


def test_unknown_reason_cannot_be_raised() -> None:
    """Reasons are a closed set, so adapters can map every one of them."""
    with pytest.raises(ValueError):
        VerificationError("cert_whatever")
