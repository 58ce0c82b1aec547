"""Who may link a device: the rule behind the serial-takeover defence (no I/O)."""

from __future__ import annotations

from orders.services.devices import may_link
from orders.store.model import DeviceLink


def test_only_the_owner_may_link_a_device_with_an_active_link() -> None:
    """No link: anyone; an active link: its shopper only."""
    owned = DeviceLink(device_id=1, shopper_id=7, store_id=1, status="active")
    assert may_link(None, 9)
    assert may_link(owned, 7)
    assert not may_link(owned, 9)
