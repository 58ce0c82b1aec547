"""/alexa over real HTTP (waitress): signed requests, forged ones, the composed app, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from orders.store.db import Database
from orders.store.model import Order
from tests.conftest import AppFactory
from tests.e2e.conftest import restock_env, run_cli
from tests.factories import count, db_snapshot
from tests.unit.test_alexa_verification import Pki
from tests.voice_fixtures import (
    SKILL_ID,
    Conversation,
    build_voice_world,
    envelope,
    intent,
    speech_of,
)
from tests.voice_signing import CERT_URL, AmazonBucket, build_pki, serve, sign
from voice_skill.interaction_model import MANIFEST_PATH, MODEL_PATH, PACKAGE_DIR
from voice_skill.verification import AlexaRequestVerifier, CertChainCache
from voice_skill.web import LimitedFetch

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pki() -> Pki:
    """One test CA hierarchy for the module (RSA key generation is the slow part)."""
    return build_pki()


@pytest.fixture
def bucket(pki: Pki) -> AmazonBucket:
    """The chain as Amazon's bucket would serve it."""
    return AmazonBucket(pki)


@pytest.fixture
def signed_server(
    app_factory: AppFactory, db: Database, pki: Pki, bucket: AmazonBucket
) -> Iterator[str]:
    """/alexa with full signature checks against our test root, on a real waitress server."""
    verifier = AlexaRequestVerifier(
        fetch=CertChainCache(fetch=bucket.fetch), trusted_roots=[pki.root], skill_id=SKILL_ID
    )
    with serve(app_factory(db, alexa_verifier=verifier)) as base:
        yield base


def _post(base: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{base}/alexa",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


def test_a_signed_conversation_over_http_places_exactly_one_order(
    db: Database, pki: Pki, bucket: AmazonBucket, signed_server: str
) -> None:
    """Buy → yes, signed like Alexa, through waitress: one order; a retried yes adds none."""
    world = build_voice_world(db)

    def send(body: bytes) -> tuple[int, dict[str, Any]]:
        response = _post(signed_server, body, sign(body, pki.leaf_key))
        return response.status_code, response.json()

    talk = Conversation(send, world.token)
    assert "2 coffee pods" in speech_of(talk.say(intent("BuyIntent", quantity="2", product="pods")))
    assert "Done" in speech_of(talk.say(intent("AMAZON.YesIntent")))
    talk.retry()
    with db.read() as session:
        assert len(session.scalars(select(Order)).all()) == 1
    # The chain was downloaded once and then served from the cache.
    assert bucket.downloads == [CERT_URL]


def _signed_body(world_token: str, skill_id: str = SKILL_ID) -> bytes:
    return json.dumps(
        envelope(intent("BuyIntent", product="pods"), token=world_token, skill_id=skill_id)
    ).encode()


@pytest.mark.parametrize(
    "forgery",
    ["other-key", "body-changed", "no-signature", "no-chain-url", "url-outside-bucket", "skill"],
)
def test_forged_or_foreign_requests_are_400_and_change_nothing(
    db: Database, pki: Pki, signed_server: str, forgery: str
) -> None:
    """Each broken rule is refused with HTTP 400 problem+json; nothing is stored."""
    world = build_voice_world(db)
    body = _signed_body(world.token, "amzn1.ask.skill.other" if forgery == "skill" else SKILL_ID)
    headers = sign(body, pki.other_key if forgery == "other-key" else pki.leaf_key)
    if forgery == "body-changed":
        body = body.replace(b'"pods"', b'"beans"')
    elif forgery == "no-signature":
        del headers["Signature-256"]
    elif forgery == "no-chain-url":
        del headers["SignatureCertChainUrl"]
    elif forgery == "url-outside-bucket":
        headers["SignatureCertChainUrl"] = "https://evil.example.com/echo.api/cert.pem"
    before = db_snapshot(db)
    response = _post(signed_server, body, headers)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["error"] == "invalid_request"
    assert db_snapshot(db) == before


def test_certificate_downloads_beyond_the_rate_are_refused(
    app_factory: AppFactory, db: Database, pki: Pki
) -> None:
    """Each chain URL has its own download budget; past it that URL is refused, cached ones pass."""
    world = build_voice_world(db)
    bucket = AmazonBucket(pki)
    limited = CertChainCache(fetch=LimitedFetch(bucket.fetch, rate="2/minute"))
    verifier = AlexaRequestVerifier(fetch=limited, trusted_roots=[pki.root], skill_id=SKILL_ID)
    body = _signed_body(world.token)
    with serve(app_factory(db, alexa_verifier=verifier)) as base:
        assert _post(base, body, sign(body, pki.leaf_key)).status_code == 200
        fake = "https://s3.amazonaws.com/echo.api/forged.pem"
        for _ in range(3):
            assert _post(base, body, sign(body, pki.leaf_key, fake)).status_code == 400
        assert len(bucket.downloads) == 3  # the real chain, the forged URL twice; then its limit
        assert _post(base, body, sign(body, pki.leaf_key)).status_code == 200


def test_the_composed_app_over_http_with_verification_off(
    app_factory: AppFactory, db: Database
) -> None:
    """create_app mounts /alexa; with RESTOCK_ALEXA_VERIFY=off unsigned requests are served."""
    world = build_voice_world(db)
    with serve(app_factory(db, alexa_verify=False)) as base:
        bad = _post(base, b"{nope", {})
        assert bad.status_code == 400
        assert bad.headers["Content-Type"].startswith("application/problem+json")
        body = _signed_body(world.token)
        answer = _post(base, body, {})
        assert answer.status_code == 200
        assert "Should I order it?" in speech_of(answer.json())
    assert count(db, Order) == 0


def test_alexa_model_cli_reproduces_the_committed_package(tmp_path: Path) -> None:
    """`seed --demo` then `alexa-model --out DIR` writes the committed files byte for byte."""
    env = restock_env(tmp_path)
    assert run_cli(["seed", "--demo"], env).returncode == 0
    out = tmp_path / "package"
    done = run_cli(["alexa-model", "--out", str(out)], env)
    assert done.returncode == 0, done.stderr
    for path in (MANIFEST_PATH, MODEL_PATH):
        assert (out / path).read_bytes() == (PACKAGE_DIR / path).read_bytes(), path


def test_alexa_model_cli_without_a_demo_store_explains_itself(tmp_path: Path) -> None:
    """No store to read: exit code 2 and a hint, and no files."""
    env = restock_env(tmp_path)
    done = run_cli(["alexa-model", "--out", str(tmp_path / "package")], env)
    assert done.returncode == 2
    assert "seed --demo" in done.stderr
    assert not (tmp_path / "package").exists()
