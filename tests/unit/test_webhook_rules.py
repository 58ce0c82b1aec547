"""Webhook rules without I/O: types, the retry schedule, and the SSRF address policy."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from orders.domain.errors import InvalidRequest
from orders.domain.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    address_allowed,
    check_host,
    check_url,
    retry_delay,
    webhook_type,
)


def test_outbox_kinds_map_to_the_webhook_types() -> None:
    """A new order is placed or pending approval by its status; approval has its own type."""
    assert webhook_type("order.created", "placed") == "order.placed"
    assert webhook_type("order.created", "pending_approval") == "order.pending_approval"
    assert webhook_type("order.placed", "placed") == "order.approved"
    assert webhook_type("order.rejected", "cancelled") == "order.rejected"
    assert webhook_type("delayed", "shipped") == "order.delayed"
    assert webhook_type("device.linked", "") == "device.linked"


def test_retries_back_off_over_about_a_day_then_stop() -> None:
    """Each pause is within ±20 % of the schedule, the whole about a day, then None."""
    rng = random.Random(7)
    pauses = [retry_delay(n, rng) for n in range(1, MAX_ATTEMPTS)]
    for pause, base in zip(pauses, RETRY_DELAYS, strict=True):
        assert pause is not None and base * 0.8 <= pause <= base * 1.2
    total = sum((p for p in pauses if p is not None), timedelta())
    assert timedelta(hours=18) < total < timedelta(hours=30)
    assert retry_delay(MAX_ATTEMPTS, rng) is None


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.0.0.8", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1",
     "fe80::1", "fd00::1", "::ffff:127.0.0.1", "0.0.0.0", "100.64.0.1", "224.0.0.1"],
)  # fmt: skip
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    """Nothing but public unicast, by default."""
    assert not address_allowed(address, allow_private=False)


def test_public_addresses_pass_and_the_operator_may_allow_private_ones() -> None:
    """A public address passes; with the setting on, loopback does too (but never 0.0.0.0)."""
    assert address_allowed("93.184.215.14", allow_private=False)
    assert address_allowed("2606:4700::1111", allow_private=False)
    assert address_allowed("127.0.0.1", allow_private=True)
    assert not address_allowed("0.0.0.0", allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "http:///nohost", "https://user:pw@example.com/", "example.com",
     "https://example.com:0/", "https://example.com:99999/", "https://" + "a" * 2001],
)  # fmt: skip
def test_bad_urls_are_refused(url: str) -> None:
    """Only absolute http(s) URLs with a host and no credentials."""
    with pytest.raises(InvalidRequest):
        check_url(url)


def test_literal_private_hosts_and_localhost_are_refused_by_url() -> None:
    """The URL check catches literal addresses and localhost before any DNS."""
    for host in ("127.0.0.1", "[::1]", "localhost", "api.localhost", "10.1.1.1"):
        with pytest.raises(InvalidRequest):
            check_host(host, allow_private=False)
    check_host("example.com", allow_private=False)
    check_host("localhost", allow_private=True)
