"""Generated payloads thrown at a real running hub over UDP: never a 5.xx, never a change."""

from __future__ import annotations

import json

import cbor2
import pytest
from aiocoap.numbers.codes import Code
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.services.devices import LinkRules
from orders.store.db import Database
from tests.e2e.hub_fixtures import CoapClient, RunningHub, build_devices, client, hub
from tests.factories import db_snapshot
from tests.unit.test_hub_ingress import shared_reference_dag

__all__ = ["client", "hub"]
PATHS = ["/press", "/telemetry", "/link", "/link/token", "/orders/x", "/nowhere"]
KEYS = ["at", "seq", "boot", "senml", "client_id", "serial", "device_code", "n", "v", "bn", "t"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["pods", "count", "%", "", "TOKEN", "\ud800", "x\udfff"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=25,
)
bodies = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)
senml_records = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "n": st.sampled_from(["pods", "milk", "", "x y"]),
            "v": st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 10**30),
            "u": st.sampled_from(["count", "%", "kg", ""]),
            "t": st.floats(-1e12, 1e12) | st.integers(-(2**40), 2**40),
            "bt": st.floats(allow_nan=True) | st.integers(0, 2**40),
            "bn": st.text(max_size=10),
            0: st.sampled_from(["pods"]),
            2: st.integers(-3, 60),
        },
    ),
    max_size=300,
)


def _replace_token(value: object, token: str) -> object:
    if value == "TOKEN":
        return token
    if isinstance(value, dict):
        return {k: _replace_token(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_token(v, token) for v in value]
    return value


def _encode(body: object, fmt: int | None) -> bytes:
    if fmt != 50:
        try:
            return cbor2.dumps(body)
        except (UnicodeEncodeError, ValueError):
            pass  # lone surrogates can't be CBOR text: send the JSON bytes mislabelled
    return json.dumps(body, allow_nan=True).encode()


# CBOR no device sends: shared and string references (28/29/256/25), other tags around and
# inside maps, deep definite and indefinite nesting, shared-reference DAGs.
TAGS = [28, 29, 256, 25, 1, 2, 3, 32, 24, 55799]
cbor_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
tagged = st.recursive(
    st.none() | st.integers(-(2**40), 2**40) | cbor_text | st.binary(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
        | st.builds(cbor2.CBORTag, st.sampled_from(TAGS), inner)
        | st.builds(cbor2.CBORTag, st.just(29), st.integers(0, 40))
    ),
    max_leaves=30,
)
hostile_cbor = st.one_of(
    st.builds(lambda body: cbor2.dumps(body), st.dictionaries(st.sampled_from(KEYS), tagged)),
    st.builds(lambda body: cbor2.dumps(cbor2.CBORTag(28, body)), tagged),
    st.builds(lambda body: cbor2.dumps(cbor2.CBORTag(256, body)), tagged),
    st.integers(1, 40).map(shared_reference_dag),
    st.integers(1, 600).map(lambda depth: b"\xa1\x62at" + b"\x81" * depth + b"\x01"),
    st.integers(1, 600).map(lambda depth: b"\xa1\x62at" + b"\x9f" * depth + b"\xff" * depth),
)

requests = st.one_of(
    st.tuples(st.sampled_from(PATHS), bodies, st.sampled_from([60, 50, None, 0, 42])),
    st.tuples(
        st.just("/telemetry"),
        st.fixed_dictionaries({"at": st.just("TOKEN"), "senml": senml_records}),
        st.sampled_from([60, 50]),
    ),
    st.tuples(st.sampled_from(PATHS), st.binary(max_size=1500), st.sampled_from([60, 50, None])),
    st.tuples(st.sampled_from(PATHS), hostile_cbor, st.sampled_from([60, None])),
)


@pytest.mark.e2e
def test_generated_payloads_never_get_5xx_nor_change_the_database(
    db: Database, hub: RunningHub, client: CoapClient
) -> None:
    """A paused button's token may appear anywhere; every answer is 2.xx/4.xx, DB unchanged."""
    devices = build_devices(db, rules=LinkRules(product_sku="PODS", paused=True))
    before = db_snapshot(db)

    @settings(
        max_examples=160,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(requests)
    def throw(request: tuple[str, object, int | None]) -> None:
        path, body, fmt = request
        if isinstance(body, bytes):
            payload = body
        else:
            payload = _encode(_replace_token(body, devices.button_token), fmt)
        reply = client.request(Code.POST, path, payload, fmt)
        assert reply.code.class_ in (2, 4), (reply.code, reply.payload)
        if reply.code.class_ == 4 and reply.payload:
            assert len(reply.payload) < 300  # a short diagnostic
        assert db_snapshot(db) == before

    throw()
