"""Alexa certificate downloads: a budget per URL that junk URLs cannot starve."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from orders.store.db import utcnow
from tests.unit.test_alexa_verification import Pki
from tests.voice_signing import CERT_URL, AmazonBucket, build_pki, sign
from voice_skill.verification import AlexaRequestVerifier, VerificationError
from voice_skill.web import CERT_DOWNLOADS, LimitedFetch, make_verifier

SKILL_ID = "amzn1.ask.skill.5c3e1d7a-0f44-4b7e-9a11-6d2f0c8e9b21"


@pytest.fixture(scope="module")
def pki() -> Pki:
    """One test CA hierarchy for the module (RSA key generation is the slow part)."""
    return build_pki()


def _body() -> bytes:
    """A fresh LaunchRequest envelope for our skill."""
    application = {"applicationId": SKILL_ID}
    return json.dumps(
        {
            "version": "1.0",
            "context": {"System": {"application": application}},
            "request": {
                "type": "LaunchRequest",
                "requestId": "amzn1.echo-api.request.1",
                "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
            },
        }
    ).encode()


def _verifier(bucket: AmazonBucket, pki: Pki) -> AlexaRequestVerifier:
    """The production wiring (cache, per-URL budget) over the test bucket and root."""
    return make_verifier(
        skill_id=SKILL_ID, verify_signature=True, download=bucket.fetch, trusted_roots=[pki.root]
    )


def test_ten_junk_echo_api_urls_do_not_starve_the_real_chain(pki: Pki) -> None:
    """Ten junk echo.api URLs (the old global budget) still leave the real chain fetchable."""
    bucket = AmazonBucket(pki)
    verifier = _verifier(bucket, pki)
    body = _body()
    budget = int(CERT_DOWNLOADS.split("/")[0])
    for n in range(budget):
        junk = f"https://s3.amazonaws.com/echo.api/junk-{n}.pem"
        with pytest.raises(VerificationError) as refused:
            verifier.verify(sign(body, pki.leaf_key, junk), body)
        assert refused.value.reason == "cert_fetch"
    assert verifier.verify(sign(body, pki.leaf_key), body)["request"]["type"] == "LaunchRequest"
    assert bucket.downloads[-1] == CERT_URL


def test_urls_breaking_amazons_rules_spend_no_budget() -> None:
    """A URL outside s3.amazonaws.com/echo.api/ is refused before the limiter or any download."""
    calls: list[str] = []
    limited = LimitedFetch(lambda url: calls.append(url) or b"pem", rate="1/minute")
    for _ in range(3):
        with pytest.raises(VerificationError) as refused:
            limited("https://evil.example/echo.api/cert.pem")
        assert refused.value.reason == "cert_url_host"
    assert limited(CERT_URL) == b"pem"
    assert calls == [CERT_URL]


def test_the_budget_is_per_url() -> None:
    """One URL past its budget is refused while another URL still downloads."""
    limited = LimitedFetch(lambda url: b"pem", rate="2/minute")
    other = "https://s3.amazonaws.com/echo.api/echo-api-cert-15.pem"
    limited(CERT_URL)
    limited(CERT_URL)
    with pytest.raises(VerificationError) as refused:
        limited(CERT_URL)
    assert refused.value.reason == "cert_fetch"
    assert limited(other) == b"pem"


def test_a_validated_chain_is_kept_until_it_expires(pki: Pki) -> None:
    """Once validated, the chain is not downloaded again while valid, then it is."""
    bucket = AmazonBucket(pki)
    moment = [utcnow()]
    verifier = AlexaRequestVerifier(
        fetch=bucket.fetch, trusted_roots=[pki.root], clock=lambda: moment[0], skill_id=SKILL_ID
    )

    def send() -> None:
        body = json.loads(_body())
        body["request"]["timestamp"] = moment[0].isoformat().replace("+00:00", "Z")
        raw = json.dumps(body).encode()
        verifier.verify(sign(raw, pki.leaf_key), raw)

    for _ in range(3):
        send()
    assert bucket.downloads == [CERT_URL]
    # AmazonBucket's leaf lives 30 days; past that the kept chain is dropped and refetched.
    moment[0] += timedelta(days=31)
    with pytest.raises(VerificationError) as refused:
        send()
    assert refused.value.reason == "cert_expired"
    assert bucket.downloads == [CERT_URL, CERT_URL]


def test_a_refused_chain_is_not_kept(pki: Pki) -> None:
    """A chain that fails validation is fetched again next time, never served from memory."""
    bucket = AmazonBucket(pki)
    verifier = AlexaRequestVerifier(fetch=bucket.fetch, trusted_roots=[pki.stranger_root])
    body = _body()
    for _ in range(2):
        with pytest.raises(VerificationError) as refused:
            verifier.verify(sign(body, pki.leaf_key), body)
        assert refused.value.reason == "cert_chain"
    assert bucket.downloads == [CERT_URL, CERT_URL]
