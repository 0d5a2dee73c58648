"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), bytes in, client address out.

A TCP load balancer that does not speak HTTP (HAProxy in TCP mode, AWS NLB,
GCP and Azure network load balancers) sends one such header at the start of
each connection to say whom it accepted the connection from.  With
`--proxy-protocol` every connection must start with one; the connection
(`ProxyProtocolConnection`) feeds bytes to `parse` until it has the header,
then hands the rest to the HTTP parser.

    v1: "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\\r\\n"  (at most 107 bytes;
        TCP6, or UNKNOWN with anything after it)
    v2: the 12-byte signature, version/command, family/transport, a 16-bit
        length, the addresses, then TLVs (skipped: the length covers them)

A LOCAL command (v2, the balancer's own health check), UNKNOWN (v1) and an
unspecified family carry no client: the peer itself is the client.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

from prefork.errors import ProtocolError

V1_PREFIX: Final = b"PROXY "
V1_MAX: Final = 107  # the spec's bound, CRLF included
V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_FIXED: Final = 16  # signature, version/command, family/transport, length

_V2_LOCAL: Final = 0x20
_V2_PROXY: Final = 0x21
# family nibble -> (address length of source + destination, bytes per address, inet_ntop family)
_V2_INET: Final = {1: (12, 4, socket.AF_INET), 2: (36, 16, socket.AF_INET6)}
_V2_UNSPEC: Final = 0
_V2_UNIX: Final = 3
_V2_UNIX_LENGTH: Final = 216


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    local: bool  # no client given (LOCAL, UNKNOWN, AF_UNSPEC): the peer is the client
    client: tuple[str, int] | None = None  # None with local=False: a unix-socket client


LOCAL: Final = ProxyHeader(local=True)


def is_binary(data: bytes) -> bool:
    """Whether `data` starts like a v2 header (refused by closing: it speaks no HTTP)."""
    return V2_SIGNATURE.startswith(data[:12]) and bool(data)


def parse(data: bytes) -> tuple[ProxyHeader, int] | None:
    """The header at the start of `data` and its size; None while incomplete.

    Raises ProtocolError (400) if `data` does not start with a valid header.
    """
    if is_binary(data):
        return _parse_v2(data) if len(data) >= _V2_FIXED else None
    if not data.startswith(V1_PREFIX[: len(data)]):
        raise ProtocolError(400, "missing PROXY protocol header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProtocolError(400, "PROXY protocol v1 header too long")
        return None
    return _parse_v1(data[:end]), end + 2


def _parse_v1(line: bytes) -> ProxyHeader:
    parts = line.split(b" ")
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return LOCAL
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProtocolError(400, "malformed PROXY protocol v1 header")
    version = 4 if parts[1] == b"TCP4" else 6
    try:
        source = ipaddress.ip_address(parts[2].decode("ascii"))
        destination = ipaddress.ip_address(parts[3].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(400, "malformed PROXY protocol v1 address") from None
    if (
        source.version != version
        or destination.version != version
        or not _is_v1_port(parts[4])
        or not _is_v1_port(parts[5])
    ):
        raise ProtocolError(400, "malformed PROXY protocol v1 header")
    return ProxyHeader(local=False, client=(str(source), int(parts[4])))


def _is_v1_port(text: bytes) -> bool:
    """0..65535 in decimal, without a leading zero (as the spec writes it)."""
    if not text.isdigit() or len(text) > 5 or (text[:1] == b"0" and text != b"0"):
        return False
    return int(text) < 65536


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    command, family = data[12], data[13] >> 4
    size = _V2_FIXED + int.from_bytes(data[14:16], "big")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProtocolError(400, "unsupported PROXY protocol version or command")
    if len(data) < size:
        return None
    if command == _V2_LOCAL or family == _V2_UNSPEC:
        return LOCAL, size
    if family == _V2_UNIX:
        if size - _V2_FIXED < _V2_UNIX_LENGTH:
            raise ProtocolError(400, "PROXY protocol v2 addresses truncated")
        return ProxyHeader(local=False), size
    inet = _V2_INET.get(family)
    if inet is None:
        raise ProtocolError(400, "unsupported PROXY protocol v2 address family")
    length, width, af = inet
    if size - _V2_FIXED < length:
        raise ProtocolError(400, "PROXY protocol v2 addresses truncated")
    source = socket.inet_ntop(af, data[_V2_FIXED : _V2_FIXED + width])
    port_at = _V2_FIXED + 2 * width
    port = int.from_bytes(data[port_at : port_at + 2], "big")
    return ProxyHeader(local=False, client=(source, port)), size
