"""The PROXY protocol v1/v2 parser, table-driven; and the setting's one incompatibility.

Through a real server (both interfaces, malformed headers, untrusted peers):
tests/integration/test_proxy_protocol_server.py.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Final

import pytest

from prefork.config import load
from prefork.errors import ConfigError, ProtocolError
from prefork.http.proxy_protocol import LOCAL, V2_SIGNATURE, ProxyHeader, parse


def v2(command: int, family: int, addresses: bytes, tlvs: bytes = b"") -> bytes:
    body = addresses + tlvs
    return V2_SIGNATURE + bytes((command, family)) + struct.pack("!H", len(body)) + body


def inet4(source: str, source_port: int) -> bytes:
    return (
        socket.inet_aton(source)
        + socket.inet_aton("10.0.0.1")
        + struct.pack("!HH", source_port, 80)
    )


def inet6(source: str, source_port: int) -> bytes:
    return (
        socket.inet_pton(socket.AF_INET6, source)
        + socket.inet_pton(socket.AF_INET6, "2001:db8::2")
        + struct.pack("!HH", source_port, 443)
    )


V2_PROXY, V2_LOCAL = 0x21, 0x20
TCP4, TCP6, UNIX_STREAM, UNSPEC = 0x11, 0x21, 0x31, 0x00
TLV: Final = b"\x04\x00\x03abc"  # a PP2_TYPE_NOOP TLV: skipped

VALID: Final = [
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 80\r\n", ProxyHeader(False, ("203.0.113.7", 56324))),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 4711 443\r\n", ProxyHeader(False, ("2001:db8::1", 4711))),
    (b"PROXY TCP4 203.0.113.7 10.0.0.1 0 80\r\n", ProxyHeader(False, ("203.0.113.7", 0))),
    (b"PROXY UNKNOWN\r\n", LOCAL),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", LOCAL),
    (v2(V2_PROXY, TCP4, inet4("203.0.113.7", 56324)), ProxyHeader(False, ("203.0.113.7", 56324))),
    (v2(V2_PROXY, TCP4, inet4("203.0.113.7", 1), TLV), ProxyHeader(False, ("203.0.113.7", 1))),
    (v2(V2_PROXY, TCP6, inet6("2001:db8::1", 4711)), ProxyHeader(False, ("2001:db8::1", 4711))),
    (v2(V2_PROXY, UNIX_STREAM, bytes(216)), ProxyHeader(False, None)),
    (v2(V2_LOCAL, UNSPEC, b""), LOCAL),
    (v2(V2_LOCAL, TCP4, inet4("203.0.113.7", 1)), LOCAL),  # LOCAL: addresses ignored
    (v2(V2_PROXY, UNSPEC, b""), LOCAL),
]


@pytest.mark.parametrize(("data", "header"), VALID)
def test_parse_valid(data: bytes, header: ProxyHeader) -> None:
    assert parse(data + b"GET / HTTP/1.1\r\n") == (header, len(data))
    # Any prefix is incomplete, never an error.
    for end in range(len(data)):
        assert parse(data[:end]) is None, data[:end]


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",  # no header at all
        b"PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",  # family and address disagree
        b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 80\r\n",
        b"PROXY TCP4 203.0.113.7 10.0.0.1 080 80\r\n",
        b"PROXY TCP4 203.0.113.007 10.0.0.1 1 80\r\n",
        b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
        b"PROXY  TCP4 203.0.113.7 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 " + b"1" * 100,  # no CRLF within 107 bytes
        b"proxy TCP4 203.0.113.7 10.0.0.1 1 2\r\n",
        v2(0x11, TCP4, inet4("203.0.113.7", 1)),  # version 1 in a v2 header
        v2(0x22, TCP4, inet4("203.0.113.7", 1)),  # unknown command
        v2(V2_PROXY, TCP4, b"\x00" * 11),  # truncated addresses
        v2(V2_PROXY, TCP6, inet4("203.0.113.7", 1)),
        v2(V2_PROXY, 0x41, b"\x00" * 12),  # unknown family
    ],
)
def test_parse_malformed(data: bytes) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse(data)
    assert raised.value.status == 400


def test_not_with_tls(tmp_path: Path) -> None:
    environ = {
        "PREFORK_PROXY_PROTOCOL": "true",
        "PREFORK_CERTFILE": "cert.pem",
        "PREFORK_KEYFILE": "key.pem",
    }
    with pytest.raises(ConfigError, match="--proxy-protocol cannot be combined with --certfile"):
        load({"app": "a:b"}, environ=environ, cwd=tmp_path)
