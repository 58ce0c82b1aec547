"""mDNS: the hub advertises `_coap._udp.local.` while it runs and says goodbye when it stops."""

from __future__ import annotations

import asyncio
import socket

import pytest

from device_hub.mdns import HUB_RT, FoundHub, discover
from orders.store.db import Database
from tests.conftest import Backend
from tests.e2e.hub_fixtures import start_hub, stop_hub


def _multicast_on_loopback() -> str | None:
    """None when an mDNS socket can join 224.0.0.251 on 127.0.0.1, else the reason it can't."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton("224.0.0.251") + socket.inet_aton("127.0.0.1"),
            )
        except OSError as exc:
            return f"cannot join the mDNS group on the loopback interface: {exc}"
    return None


def _browse(seconds: float) -> list[FoundHub]:
    return asyncio.run(discover(seconds, interfaces=["127.0.0.1"], first=False))


@pytest.mark.e2e
def test_hub_is_found_by_mdns_with_its_txt_records_and_gone_after_stop(
    sqlite_backend: Backend,
) -> None:
    """Browse on loopback: rt=restock.hub, the link path, a version; nothing after stop."""
    db = Database(sqlite_backend.engine)
    reason = _multicast_on_loopback()
    if reason is not None:
        pytest.skip(reason)
    running = start_hub(db, mdns=True)
    try:
        assert running.hub.advertisement is not None, "the hub could not advertise"
        found = [hub for hub in _browse(2.5) if hub.port == running.port]
    finally:
        port = running.port
        stop_hub(running)
    assert len(found) == 1
    [hub] = found
    assert hub.properties == {"rt": HUB_RT, "link": "/link", "v": "1"}
    assert hub.uri == f"coap://127.0.0.1:{port}"
    assert [h for h in _browse(1.5) if h.port == port] == []
