"""POST /alexa: verify the request, run the skill, answer JSON; refusals are HTTP 400."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from ask_sdk_core.exceptions import SerializationException
from ask_sdk_core.skill import CustomSkill
from cryptography import x509
from flask import Blueprint, Response, jsonify, request
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from auth.http import problem
from orders.store.db import Database, utcnow
from voice_skill.skill import SkillRunner, build_skill
from voice_skill.verification import (
    AlexaRequestVerifier,
    CertChainCache,
    VerificationError,
    fetch_cert_chain,
    load_trusted_roots,
    validate_cert_chain_url,
)

log = logging.getLogger(__name__)

# Per URL: a shared budget let ten junk echo.api URLs starve the real chain's download.
# Amazon rotates its chain rarely, and a validated chain is kept until it expires.
CERT_DOWNLOADS = "10/minute"


class LimitedFetch:
    """A certificate fetcher that refuses (reason cert_fetch) beyond a download rate per URL."""

    def __init__(
        self,
        fetch: Callable[[str], bytes] = fetch_cert_chain,
        *,
        rate: str = CERT_DOWNLOADS,
        storage_uri: str = "memory://",
    ) -> None:
        self._fetch = fetch
        self._rate = parse(rate)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def __call__(self, url: str) -> bytes:
        """Fetch `url` unless its download budget is spent; bad URLs spend nothing."""
        # Amazon's URL rules first, so a URL we would never fetch cannot spend a budget.
        validate_cert_chain_url(url)
        if not self._limiter.hit(self._rate, "alexa-cert-download", url):
            raise VerificationError("cert_fetch", "certificate download rate limit reached")
        return self._fetch(url)


def make_verifier(
    *,
    skill_id: str | None,
    verify_signature: bool,
    rate_limit_storage: str = "memory://",
    clock: Callable[[], datetime] = utcnow,
    download: Callable[[str], bytes] = fetch_cert_chain,
    trusted_roots: Sequence[x509.Certificate] | None = None,
) -> AlexaRequestVerifier:
    """The production verifier: cached chains, rate-limited downloads, the system trust store."""
    # The limit sits behind the cache, so only cache misses spend the download budget.
    fetch = CertChainCache(fetch=LimitedFetch(download, storage_uri=rate_limit_storage))
    if verify_signature and trusted_roots is None:
        trusted_roots = _system_roots()
    return AlexaRequestVerifier(
        fetch=fetch,
        trusted_roots=trusted_roots,
        clock=clock,
        skill_id=skill_id,
        verify_signature=verify_signature,
    )


@functools.cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    # Parsing the CA bundle is slow; every app built in a process (tests build many) shares
    # one parsed copy. Certificates are immutable.
    return tuple(load_trusted_roots())


def make_blueprint(
    db: Database,
    verifier: AlexaRequestVerifier,
    *,
    skill: CustomSkill | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Blueprint:
    """The /alexa endpoint over `db`, checking every request with `verifier`."""
    runner = SkillRunner(skill or build_skill(db, clock=clock))
    bp = Blueprint("voice_skill", __name__)

    @bp.post("/alexa")
    def alexa() -> Response:
        body = request.get_data(cache=False)
        try:
            verifier.verify(dict(request.headers), body)
        except VerificationError as exc:
            # Which rule failed is logged, not told: it would only help a forger.
            log.warning("alexa request refused (%s): %s", exc.reason, exc.detail)
            return problem(400, "invalid_request", "not a valid Alexa request")
        try:
            answer = runner.run(body.decode("utf-8"))
        except (SerializationException, UnicodeDecodeError) as exc:
            log.warning("alexa request refused (malformed envelope): %s", str(exc)[:200])
            return problem(400, "invalid_request", "not a valid Alexa request envelope")
        return jsonify(answer)

    return bp


def make_unconfigured_blueprint() -> Blueprint:
    """POST /alexa when no skill id is configured: 503, nothing run, nothing fetched."""
    bp = Blueprint("voice_skill", __name__)

    @bp.post("/alexa")
    def alexa() -> Response:
        return problem(503, "unavailable", "the Alexa skill is not configured on this server")

    return bp
