"""Webhook rules: event types, the retry schedule, and which addresses an endpoint may use."""

from __future__ import annotations

import ipaddress
import random
from datetime import timedelta
from urllib.parse import urlsplit

from orders.domain.errors import InvalidRequest

# The types a merchant may subscribe to (Standard Webhooks' `type`).
EVENT_TYPES = (
    "order.placed",
    "order.pending_approval",
    "order.approved",
    "order.rejected",
    "order.cancelled",
    "order.shipped",
    "order.delayed",
    "order.delivered",
    "device.linked",
    "device.unlinked",
    "device.fault",
    "device.fault_cleared",
    "supply.low",
    "stock.low",
)
# Sent only on the merchant's request, to the one endpoint asked for.
TEST_EVENT = "webhook.test"

# Pause before attempt n+1 after the n-th failed attempt: 5 s up to 8 h, about 24 h in all.
RETRY_DELAYS = tuple(
    timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Spread retries of many deliveries that failed together (an endpoint's outage) over ±20 %.
JITTER = 0.2
# An endpoint whose every delivery failed for this long is disabled, with a notice.
DISABLE_AFTER = timedelta(days=3)
# How long one claimed delivery stays claimed: the whole POST (10 s) plus a margin; a worker
# killed mid-delivery leaves its claim to lapse, and another worker retries the same id.
CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 10.0
LEASE = timedelta(seconds=TOTAL_TIMEOUT + 5)
# What of a response body is kept, for the delivery log.
RESPONSE_PREFIX = 200
MAX_URL_LENGTH = 2000


def webhook_type(kind: str, status: str) -> str:
    """The webhook type of an outbox row (`kind` as written, the order's `status` then)."""
    if kind == "order.created":
        return f"order.{status}"
    if kind == "order.placed":  # an order becomes placed after creation only by approval
        return "order.approved"
    if "." not in kind:  # e.g. `delayed`, written through record_event by tracking
        return f"order.{kind}"
    return kind


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta | None:
    """The pause before the next attempt after `attempts` failed ones; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = RETRY_DELAYS[max(attempts, 1) - 1]
    factor = 1 + JITTER * (2 * (rng or random).random() - 1)
    return base * factor


def check_event_types(events: list[str]) -> list[str]:
    """The subscribed types, deduplicated in order; unknown ones are refused."""
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise InvalidRequest("unknown_event_type", f"unknown event types: {', '.join(unknown)}")
    return list(dict.fromkeys(events))


def check_url(url: str) -> str:
    """An endpoint URL: absolute http(s) with a host, no credentials; returns it."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidRequest("invalid_url", "the URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest("invalid_url", "the URL does not parse") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("invalid_url", "the URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("invalid_url", "the URL must not carry credentials")
    if port == 0:
        raise InvalidRequest("invalid_url", "the URL's port must not be 0")
    return url


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The host as an IP address when it is one (`[::1]` or `127.0.0.1`), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """May a webhook connect to this IP? Only public unicast, unless private is allowed."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever its spelling
    if ip.is_unspecified or ip.is_multicast:
        return False  # 0.0.0.0 reaches the local host on Linux
    if allow_private:
        return True
    return ip.is_global and not (ip.is_loopback or ip.is_link_local or ip.is_private)


def check_host(host: str, *, allow_private: bool) -> None:
    """Refuse a URL host that is a literal private, loopback or link-local address, or
    `localhost`; names are checked again at connection time, against the address used."""
    ip = literal_address(host)
    local_name = host.rstrip(".").lower() == "localhost" or host.lower().endswith(".localhost")
    if (ip is not None and not address_allowed(str(ip), allow_private=allow_private)) or (
        ip is None and local_name and not allow_private
    ):
        raise InvalidRequest(
            "private_address",
            "webhook endpoints on private, loopback or link-local addresses are refused "
            "(an operator may allow them with RESTOCK_WEBHOOK_ALLOW_PRIVATE=on)",
        )
