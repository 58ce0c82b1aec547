"""mDNS (python-zeroconf, async API): advertise the hub, and find it from a device."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

SERVICE_TYPE = "_coap._udp.local."
HUB_RT = "restock.hub"
LINK_PATH = "/link"
VERSION = "1"


@dataclass(frozen=True)
class FoundHub:
    """A hub seen on the network."""

    name: str
    host: str
    port: int
    properties: dict[str, str]

    @property
    def uri(self) -> str:
        """The hub's base CoAP URI."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"coap://{host}:{self.port}"


def _advertised_address(host: str) -> str:
    if host not in ("", "0.0.0.0", "::"):
        return host
    # A wildcard bind: name the address the default route leaves from (no packet is sent).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


class Advertisement:
    """The hub's `_coap._udp` record, registered while the hub runs."""

    def __init__(self, host: str, port: int, *, name: str = "Restock hub", interfaces: Any = None):
        address = _advertised_address(host)
        self.zeroconf = AsyncZeroconf(
            interfaces=interfaces or [address], ip_version=IPVersion.V4Only
        )
        label = f"{name} {socket.gethostname()}-{port}"[:60]
        self.info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            addresses=[ipaddress.ip_address(address).packed],
            port=port,
            properties={"rt": HUB_RT, "link": LINK_PATH, "v": VERSION},
            server=f"restock-{socket.gethostname()}.local.",
        )

    async def start(self) -> None:
        """Announce the service (waits for the probe/announce to be sent)."""
        # Hub processes sharing one port (SO_REUSEPORT) would claim the same instance name;
        # zeroconf then picks "… (2)" instead of failing the second process.
        await (await self.zeroconf.async_register_service(self.info, allow_name_change=True))

    async def stop(self) -> None:
        """Say goodbye (TTL 0) and close the sockets."""
        try:
            await (await self.zeroconf.async_unregister_service(self.info))
        finally:
            await self.zeroconf.async_close()


async def discover(
    timeout: float = 3.0, *, interfaces: Any = None, first: bool = True
) -> list[FoundHub]:
    """Browse for hubs (TXT `rt=restock.hub`) for up to `timeout` seconds."""
    aiozc = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    names: asyncio.Queue[str] = asyncio.Queue()

    def on_change(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            names.put_nowait(name)

    browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    found: list[FoundHub] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                name = await asyncio.wait_for(names.get(), left)
            except TimeoutError:
                break
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(aiozc.zeroconf, 1500):
                continue
            props = {
                k.decode(): (v or b"").decode()
                for k, v in info.properties.items()
                if isinstance(k, bytes)
            }
            addresses = info.parsed_addresses()
            if props.get("rt") != HUB_RT or not addresses or info.port is None:
                continue
            found.append(FoundHub(name, addresses[0], info.port, props))
            if first:
                break
    finally:
        await browser.async_cancel()
        await aiozc.async_close()
    return found
