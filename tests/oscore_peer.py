"""A small OSCORE client written from RFC 8613 and RFC 7252 on `cryptography` and `cbor2` only.

Independent of aiocoap's code, so the hub is checked against the RFC, not against the
library it is built on. Only what the tests need: AES-CCM-16-64-128, HKDF-SHA-256, no
ID Context, requests with a fresh Partial IV and responses with or without one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALG_AES_CCM_16_64_128 = 10
KEY_BYTES = 16
NONCE_BYTES = 13
TAG_BYTES = 8
# Option numbers (RFC 7252 §12.2, RFC 7641, RFC 8613)
OBSERVE, URI_PATH, CONTENT_FORMAT, OSCORE = 6, 11, 12, 9
# Class U options stay outside (RFC 8613 §4.1): here only Uri-Host/Port, Observe, OSCORE.
OUTER = {3, 7, OBSERVE, OSCORE}
POST, FETCH, GET = 2, 5, 1
CHANGED, CONTENT, CREATED = 0x44, 0x45, 0x41


def hkdf(salt: bytes, ikm: bytes, info: list[object], length: int) -> bytes:
    """RFC 8613 §3.2.1: HKDF-SHA-256 with a CBOR `info` array."""
    return HKDF(hashes.SHA256(), length, salt or None, cbor2.dumps(info)).derive(ikm)


@dataclass
class Keys:
    """A derived OSCORE context (RFC 8613 §3.2), client side."""

    sender_id: bytes
    recipient_id: bytes
    sender_key: bytes
    recipient_key: bytes
    common_iv: bytes
    seq: int = 0

    @classmethod
    def derive(cls, secret: bytes, salt: bytes, sender_id: bytes, recipient_id: bytes) -> Keys:
        """Sender Key, Recipient Key and Common IV from the master secret and salt."""

        def key(role: bytes) -> bytes:
            return hkdf(salt, secret, [role, None, ALG_AES_CCM_16_64_128, "Key", 16], 16)

        common_iv = hkdf(salt, secret, [b"", None, ALG_AES_CCM_16_64_128, "IV", 13], 13)
        return cls(sender_id, recipient_id, key(sender_id), key(recipient_id), common_iv)


def nonce(keys: Keys, piv: bytes, id_piv: bytes) -> bytes:
    """RFC 8613 §5.2: length of ID, ID and Partial IV padded, XOR the Common IV."""
    id_part = bytes([len(id_piv)]) + id_piv.rjust(NONCE_BYTES - 6, b"\0")
    parts = id_part + piv.rjust(5, b"\0")
    return bytes(a ^ b for a, b in zip(parts, keys.common_iv, strict=True))


def aad(request_kid: bytes, request_piv: bytes) -> bytes:
    """RFC 8613 §5.4: the COSE Enc_structure over the external AAD (no Class I options)."""
    external = cbor2.dumps([1, [ALG_AES_CCM_16_64_128], request_kid, request_piv, b""])
    return cbor2.dumps(["Encrypt0", b"", external])


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    """RFC 7252 §3.1 option encoding, options sorted by number."""
    out, last = b"", 0
    for number, value in sorted(options, key=lambda option: option[0]):
        delta, length = number - last, len(value)
        last = number
        head, extra = 0, b""
        for part, shift in ((delta, 4), (length, 0)):
            if part < 13:
                head |= part << shift
            elif part < 269:
                head |= 13 << shift
                extra += bytes([part - 13])
            else:
                head |= 14 << shift
                extra += (part - 269).to_bytes(2, "big")
        out += bytes([head]) + extra + value
    return out


def decode_options(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Options and payload of the bytes after a CoAP header and token."""
    options, number, at = [], 0, 0
    while at < len(data) and data[at] != 0xFF:
        head = data[at]
        at += 1
        values = []
        for nibble in (head >> 4, head & 0x0F):
            if nibble == 13:
                values.append(data[at] + 13)
                at += 1
            elif nibble == 14:
                values.append(int.from_bytes(data[at : at + 2], "big") + 269)
                at += 2
            else:
                values.append(nibble)
        number += values[0]
        options.append((number, data[at : at + values[1]]))
        at += values[1]
    payload = data[at + 1 :] if at < len(data) else b""
    return options, payload


def uint(value: int) -> bytes:
    """A CoAP uint option value (shortest big-endian)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@dataclass
class Protected:
    """A request as sent: what its response is checked against."""

    datagram: bytes
    token: bytes
    piv: bytes
    kid: bytes


@dataclass
class Answer:
    """A response after unprotecting: the inner code, options and payload."""

    code: int
    options: list[tuple[int, bytes]]
    payload: bytes
    outer_code: int
    observe: int | None = None


def protect_request(
    keys: Keys,
    code: int,
    options: list[tuple[int, bytes]],
    payload: bytes = b"",
    *,
    observe: int | None = None,
    token: bytes | None = None,
    mid: int | None = None,
) -> Protected:
    """RFC 8613 §8.1: a protected CON request with the next sequence number."""
    piv = uint(keys.seq) or b"\0"
    keys.seq += 1
    inner_options = [o for o in options if o[0] not in OUTER]
    if observe is not None:  # Observe is both Inner and Outer in a request (RFC 8613 §4.1.3.5)
        inner_options.append((OBSERVE, uint(observe)))
    inner = bytes([code]) + encode_options(inner_options)
    if payload:
        inner += b"\xff" + payload
    ciphertext = AESCCM(keys.sender_key, TAG_BYTES).encrypt(
        nonce(keys, piv, keys.sender_id), inner, aad(keys.sender_id, piv)
    )
    flag = 0x08  # k: the kid follows (RFC 8613 §6.1)
    oscore_value = bytes([flag | len(piv)]) + piv + keys.sender_id
    outer_options = [(OSCORE, oscore_value)]
    if observe is not None:
        outer_options.append((OBSERVE, uint(observe)))
    token = token if token is not None else os.urandom(4)
    mid = mid if mid is not None else int.from_bytes(os.urandom(2), "big")
    header = bytes([0x40 | len(token), FETCH if observe is not None else POST])
    datagram = header + mid.to_bytes(2, "big") + token + encode_options(outer_options)
    datagram += b"\xff" + ciphertext
    return Protected(datagram, token, piv, keys.sender_id)


def unprotect_response(keys: Keys, request: Protected, datagram: bytes) -> Answer:
    """RFC 8613 §8.4: decrypt a response to `request`; ValueError if it does not verify."""
    outer_code, tkl = datagram[1], datagram[0] & 0x0F
    options, payload = decode_options(datagram[4 + tkl :])
    found = dict(options)
    if OSCORE not in found:
        raise ValueError(f"unprotected response {outer_code >> 5}.{outer_code & 31:02d}")
    value = found[OSCORE]
    piv, id_piv = request.piv, request.kid
    if value:
        length = value[0] & 0x07
        if length:
            piv, id_piv = value[1 : 1 + length], keys.recipient_id
    plain = AESCCM(keys.recipient_key, TAG_BYTES).decrypt(
        nonce(keys, piv, id_piv), payload, aad(request.kid, request.piv)
    )
    inner_options, inner_payload = decode_options(plain[1:])
    observe = int.from_bytes(found[OBSERVE], "big") if OBSERVE in found else None
    return Answer(plain[0], inner_options, inner_payload, outer_code, observe)


@dataclass
class Peer:
    """A device on a UDP socket speaking the client above to one hub."""

    address: tuple[str, int]
    keys: Keys
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(10)

    def send(self, request: Protected) -> bytes:
        """Send the datagram, return the first answer with its token (ACKing a CON one)."""
        self.sock.sendto(request.datagram, self.address)
        return self.receive(request.token)

    def receive(self, token: bytes) -> bytes:
        """The next datagram carrying `token`; empty ACKs are skipped, CON ones acknowledged."""
        while True:
            datagram, _ = self.sock.recvfrom(2048)
            kind, tkl = (datagram[0] >> 4) & 0x03, datagram[0] & 0x0F
            if kind == 0:  # CON notification: acknowledge it (RFC 7252 §4.2)
                self.sock.sendto(bytes([0x60, 0]) + datagram[2:4], self.address)
            if tkl and datagram[4 : 4 + tkl] == token:
                return datagram

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def path_options(*segments: str) -> list[tuple[int, bytes]]:
    """Uri-Path options for a path."""
    return [(URI_PATH, segment.encode()) for segment in segments]


def plain_request(
    code: int, options: list[tuple[int, bytes]], payload: bytes = b"", *, token: bytes
) -> bytes:
    """An unprotected CON request datagram (RFC 7252 §3)."""
    mid = int.from_bytes(os.urandom(2), "big")
    datagram = bytes([0x40 | len(token), code]) + mid.to_bytes(2, "big") + token
    datagram += encode_options(options)
    return datagram + (b"\xff" + payload if payload else b"")


def response_code(datagram: bytes) -> int:
    """The (outer) code of a response datagram."""
    return datagram[1]


def response_payload(datagram: bytes) -> bytes:
    """The (outer) payload of a response datagram."""
    return decode_options(datagram[4 + (datagram[0] & 0x0F) :])[1]
