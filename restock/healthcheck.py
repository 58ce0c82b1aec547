"""Container health probes: `python -m restock.healthcheck http URL | coap HOST:PORT | db`.

Exit 0 when the role answers, 1 (and one line on stderr saying why) when it does not. The
compose file's health checks run these inside each container.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

TIMEOUT = 3.0
COAP_TRIES = 3


class Unhealthy(Exception):
    """The probed role did not answer as a healthy one does."""


def check_http(url: str, timeout: float = TIMEOUT) -> None:
    """A GET of `url` must answer 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as exc:
        raise Unhealthy(f"GET {url}: {exc}") from exc
    if status != 200:
        raise Unhealthy(f"GET {url}: HTTP {status}")


def coap_discovery_request(message_id: int, token: bytes) -> bytes:
    """A confirmable CoAP GET /.well-known/core (RFC 7252 §3, RFC 6690)."""
    header = bytes([0x40 | len(token), 0x01]) + message_id.to_bytes(2, "big") + token
    # Uri-Path (option delta 11, length 11) ".well-known", then Uri-Path (delta 0) "core".
    return header + bytes([0xBB]) + b".well-known" + bytes([0x04]) + b"core"


def check_coap(host: str, port: int, timeout: float = TIMEOUT) -> None:
    """GET /.well-known/core at host:port must be answered 2.05 Content."""
    token = secrets.token_bytes(4)
    message_id = secrets.randbelow(1 << 16)
    request = coap_discovery_request(message_id, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout / COAP_TRIES)
        for _ in range(COAP_TRIES):
            sock.sendto(request, (host, port))
            try:
                answer = sock.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                continue
            # An answer carries our token right after the 4-byte header.
            if answer[4 : 4 + len(token)] != token:
                continue
            if answer[1] != 0x45:
                code = f"{answer[1] >> 5}.{answer[1] & 0x1F:02d}"
                raise Unhealthy(f"coap://{host}:{port}/.well-known/core answered {code}")
            return
    raise Unhealthy(f"coap://{host}:{port}: no answer within {timeout:g} s")


def check_database(url: str) -> None:
    """The database at `url` must answer SELECT 1."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(url, pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise Unhealthy(f"database: {type(exc).__name__}") from exc
    finally:
        engine.dispose()


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """Probe one role; the exit status is the verdict."""
    parser = argparse.ArgumentParser(prog="python -m restock.healthcheck", description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True)
    sub.add_parser("http", help="GET URL answers 200").add_argument("url")
    sub.add_parser("coap", help="the CoAP hub answers discovery").add_argument("address")
    sub.add_parser("db", help="DATABASE_URL answers SELECT 1")
    args = parser.parse_args(argv)
    try:
        if args.probe == "http":
            check_http(args.url)
        elif args.probe == "coap":
            check_coap(*_host_port(args.address))
        elif url := os.environ.get("DATABASE_URL"):
            check_database(url)
        else:
            # Connecting to the default SQLite path would create an empty database there.
            raise Unhealthy("DATABASE_URL is not set")
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
