"""What a trusted proxy says about the request: X-Forwarded-* and RFC 7239 `Forwarded`.

Theory of operation
-------------------
Trust belongs to the connection's peer (the socket's remote address, or the
one a PROXY protocol header gave) and is decided once per connection by
`ProxyTrust.trusts`.  While parsing, the connection notes whether a request
carries any of `NAMES`; only such a request, on a trusted connection, is
resolved here.  A request without these headers, or from an untrusted peer,
costs nothing, and its headers reach the app untouched and unbelieved.

`resolve` turns the headers into a `Forwarded` view (client, scheme, server
address, Host) that the interface adapters apply to the ASGI scope or the
WSGI environ, and the access log to `%(h)s`.  Views are remembered by their
inputs (the forwarding values, not the peer's port), so a proxy relaying the
same client again costs a hash and a dict lookup.

Rules (docs/operations.md, "Behind a proxy"):
- The client is the right-most hop that is not a trusted proxy: each proxy
  appends the address it received the request from, so everything to the
  left of the first untrusted hop may have been written by the client.  If
  every hop is trusted, the left-most one.  A hop that is not an IP address
  (`unknown`, an obfuscated identifier) is never believed as the client.
- X-Forwarded-Proto, -Host and -Port: the right-most value, the one set by
  the proxy next to us.
- `Forwarded`: proto and host come from the same element as the client.
- If a request carries any X-Forwarded-* header, `Forwarded` is ignored:
  most proxies (nginx, HAProxy's `option forwardfor`, AWS ALB, Traefik,
  Caddy) set X-Forwarded-* and pass a client's `Forwarded` through
  unchanged, so next to X-Forwarded-* it is more likely forged than set by
  the proxy.
- A malformed value is ignored (that part keeps the connection's own value);
  it is never an error.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any, Final, NamedTuple

from prefork.http.checks import HOST, HOST_CHARS

FORWARDED: Final = b"forwarded"
X_FORWARDED_FOR: Final = b"x-forwarded-for"
X_FORWARDED_PROTO: Final = b"x-forwarded-proto"
X_FORWARDED_HOST: Final = b"x-forwarded-host"
X_FORWARDED_PORT: Final = b"x-forwarded-port"
NAMES: Final = frozenset(
    {FORWARDED, X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST, X_FORWARDED_PORT}
)
_X_NAMES: Final = NAMES - {FORWARDED}

TRUST_ALL: Final = "*"
TRUST_UNIX: Final = "unix"  # a unix-socket peer (no address): a local proxy
# ws/wss as well: some proxies send the scheme of a WebSocket handshake.
_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = tuple[str, int]


def parse_trust_entry(entry: str) -> str | IPNetwork:
    """One `--forwarded-allow-ips` entry: `*`, `unix`, an IP address or a CIDR network."""
    if entry in (TRUST_ALL, TRUST_UNIX):
        return entry
    try:
        return ipaddress.ip_network(entry)  # a bare address is a /32 or /128 network
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not *, unix, an IP address or a network ({exc})") from None


class ProxyTrust:
    """The peers allowed to speak for the client (`--forwarded-allow-ips`)."""

    # Bounds both caches (cleared when full): a busy server sees many peers
    # and clients; what falls out of the cache is just computed again.
    CACHE_MAX: Final = 4096

    def __init__(self, entries: Iterable[str]) -> None:
        parsed = [parse_trust_entry(entry) for entry in entries]
        self.everyone = TRUST_ALL in parsed
        self.unix = self.everyone or TRUST_UNIX in parsed
        # (packed size, network as an integer, mask): a membership test is two
        # integer operations (the ipaddress module takes microseconds per address).
        self.ranges = tuple(
            (p.max_prefixlen // 8, int(p.network_address), int(p.netmask))
            for p in parsed
            if not isinstance(p, str)
        )
        self._known: dict[str, bool] = {}
        self.resolved: dict[tuple[Any, ...], Forwarded | None] = {}  # by resolve()

    def trusts(self, host: str | None) -> bool:
        """Whether a peer may speak for the client; None is a unix-socket peer."""
        if host is None:
            return self.unix
        known = self._known.get(host)
        if known is None:
            known = self.everyone or self._in_ranges(host)
            if len(self._known) >= self.CACHE_MAX:
                self._known.clear()
            self._known[host] = known
        return known

    def _in_ranges(self, host: str) -> bool:
        packed = _packed(host)
        if packed is None:
            return False
        if packed[:12] == _V4_MAPPED:
            packed = packed[12:]  # a dual-stack listener's view of an IPv4 peer
        size, value = len(packed), int.from_bytes(packed, "big")
        return any(size == s and value & mask == network for s, network, mask in self.ranges)


class Forwarded(NamedTuple):  # a NamedTuple: built per request, several times cheaper
    """The request as the outermost trusted proxy received it."""

    client: Address | None  # None: the proxy named none, the peer stays the client
    scheme: str
    server: Address | None
    host: bytes | None  # the Host value the app sees, when a proxy forwarded one


def resolve(
    headers: Sequence[tuple[bytes, bytes]],
    trust: ProxyTrust,
    scheme: str,
    server: Address | None,
    host: bytes,
) -> Forwarded | None:
    """Apply what trusted proxies say to the connection's own view; None if nothing usable.

    `scheme`, `server` and `host` (the Host header, b"" if none) describe the
    request as received from the peer, which is trusted.
    """
    values: dict[bytes, bytes] = {}
    for field, value in headers:
        if field in NAMES:
            # RFC 9110 5.3: repeated lines form one comma-separated list.
            values[field] = values[field] + b"," + value if field in values else value
    # A proxy repeats itself (the same client makes many requests): the answer
    # for the same inputs is remembered, and costs a hash and a lookup.
    key = (*values.items(), scheme, server, host)
    resolved = trust.resolved
    if key in resolved:
        return resolved[key]
    view = _resolve(values, trust, scheme, server, host)
    if len(resolved) >= trust.CACHE_MAX:
        resolved.clear()
    resolved[key] = view
    return view


def _resolve(
    values: dict[bytes, bytes],
    trust: ProxyTrust,
    scheme: str,
    server: Address | None,
    host: bytes,
) -> Forwarded | None:
    if _X_NAMES.isdisjoint(values):
        said = _from_forwarded(values.get(FORWARDED), trust)
    else:
        said = _from_x_forwarded(values, trust)
    new_client, new_scheme, new_host, port = said
    if new_client is None and new_scheme is None and new_host is None and port is None:
        return None
    scheme = new_scheme or scheme
    if new_host is not None or port is not None:
        name, host_port = split_host(new_host or host) or ("", None)
        name = name or (server[0] if server else "localhost")  # HTTP/1.0 without Host
        port = port or host_port or _DEFAULT_PORTS[scheme]
        server = (name, port)
        shown = f"[{name}]" if ":" in name else name
        if port != _DEFAULT_PORTS[scheme]:
            shown += f":{port}"
        new_host = shown.encode("latin-1")
    return Forwarded(new_client, scheme, server, new_host)


# What one proxy chain says: (client, scheme, host, port), None where it says nothing usable.
_Said = tuple[Address | None, str | None, bytes | None, int | None]


def _from_x_forwarded(values: dict[bytes, bytes], trust: ProxyTrust) -> _Said:
    client = None
    hops = _list(values.get(X_FORWARDED_FOR))
    if hops:
        client = parse_node(hops[client_index(hops, trust)])
    scheme = _scheme(_last(values.get(X_FORWARDED_PROTO)))
    host = _host(_last(values.get(X_FORWARDED_HOST)))
    port = _port(_last(values.get(X_FORWARDED_PORT)))
    return client, scheme, host, port


def _from_forwarded(value: bytes | None, trust: ProxyTrust) -> _Said:
    elements = parse_forwarded(value.decode("latin-1")) if value else None
    if not elements:
        return None, None, None, None
    chosen = elements[client_index([e.get("for", "") for e in elements], trust)]
    client = parse_node(chosen["for"]) if "for" in chosen else None
    scheme = _scheme(chosen.get("proto"))
    host = _host(chosen["host"].encode("latin-1")) if "host" in chosen else None
    return client, scheme, host, None


def client_index(hops: Sequence[str], trust: ProxyTrust) -> int:
    """The index of the right-most hop that is not a trusted proxy (0 if all are)."""
    if trust.everyone:
        return 0
    for index in range(len(hops) - 1, 0, -1):
        node = parse_node(hops[index])
        if node is None or not trust.trusts(node[0]):
            return index
    return 0


def parse_node(text: str) -> Address | None:
    """An IP address with an optional port, as X-Forwarded-For and RFC 7239 6 write it.

    `192.0.2.43`, `192.0.2.43:47011`, `2001:db8::1`, `[2001:db8::1]`,
    `[2001:db8::1]:4711`; port 0 when absent.  None for anything else
    (`unknown`, `_hidden`, garbage).
    """
    text = text.strip()
    port = 0
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and (rest[:1] != ":" or not _is_port(rest[1:]))):
            return None
        port = int(rest[1:]) if rest else 0
        text = text[1:end]
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
        if not _is_port(port_text):
            return None
        port = int(port_text)
    packed = _packed(text)
    if packed is None:
        return None
    return (text if len(packed) == 4 else socket.inet_ntop(socket.AF_INET6, packed), port)


_V4_MAPPED: Final = bytes(10) + b"\xff\xff"


def _packed(text: str) -> bytes | None:
    """An IP address in binary form, or None (inet_pton: C speed, strict dotted quads)."""
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return None


# RFC 7239 4: forwarded-pair = token "=" value; value = token / quoted-string
_TOKEN: Final = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR: Final = re.compile(rf'[ \t]*({_TOKEN})=({_TOKEN}|"(?:[^"\\]|\\.)*")[ \t]*([;,]|$)')
_QUOTED_PAIR: Final = re.compile(r"\\(.)")


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """The elements of a `Forwarded` value, parameter names lower-cased; None if malformed."""
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    at = 0
    while at < len(value):
        if value[at] in ", \t" and not element:
            at += 1  # RFC 9110 5.6.1: empty list elements are allowed
            continue
        match = _PAIR.match(value, at)
        if match is None:
            return None
        name, text, separator = match.group(1).lower(), match.group(2), match.group(3)
        if name in element:
            return None  # RFC 7239 4: a parameter occurs at most once per element
        if text.startswith('"'):
            text = _QUOTED_PAIR.sub(r"\1", text[1:-1])
        element[name] = text
        at = match.end()
        if separator != ";":
            elements.append(element)
            element = {}
    if element:
        elements.append(element)
    return elements or None


def split_host(host: bytes) -> tuple[str, int | None] | None:
    """A Host value's name and port (None when absent); None if malformed."""
    text = host.decode("latin-1")
    if text.startswith("["):
        end = text.find("]")
        name, rest = text[1:end], text[end + 1 :]
        if end < 0 or (rest and rest[:1] != ":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    if port_text is None:
        return name, None
    return (name, int(port_text)) if _is_port(port_text) else None


def _list(value: bytes | None) -> list[str]:
    """A comma-separated field's elements."""
    if not value:
        return []
    return [item.strip() for item in value.decode("latin-1").split(",")]


def _last(value: bytes | None) -> str | None:
    if not value:
        return None
    return value.rpartition(b",")[2].strip().decode("latin-1")


def _scheme(value: str | None) -> str | None:
    return _SCHEMES.get(value.lower()) if value else None


def _host(value: bytes | str | None) -> bytes | None:
    if not value:
        return None
    host = value.encode("latin-1") if isinstance(value, str) else value
    if host.translate(None, HOST_CHARS) or split_host(host) is None:
        return None
    return host


def _port(value: str | None) -> int | None:
    return int(value) if value and _is_port(value) else None


def _is_port(text: str) -> bool:
    return len(text) <= 5 and text.isascii() and text.isdigit() and 0 < int(text) < 65536


def with_host(headers: list[tuple[bytes, bytes]], host: bytes) -> list[tuple[bytes, bytes]]:
    """The request headers with Host replaced by `host` (added if there was none)."""
    if all(name != HOST for name, _ in headers):
        return [*headers, (HOST, host)]
    return [(name, host if name == HOST else value) for name, value in headers]
