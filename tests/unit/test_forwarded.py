"""prefork.http.forwarded without sockets: parsing, trust and the resolved view, table-driven.

The real-server side (both interfaces, trusted and untrusted peers, the
access log) is in tests/integration/test_proxy_server.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefork.config import load
from prefork.errors import ConfigError
from prefork.http.forwarded import (
    NAMES,
    Forwarded,
    ProxyTrust,
    client_index,
    parse_forwarded,
    parse_node,
    resolve,
    with_host,
)

LOCAL: Final = ProxyTrust(["127.0.0.1", "::1", "unix", "10.0.0.0/8"])
SOCKET: Final = ("127.0.0.1", 8000)


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("192.0.2.43", ("192.0.2.43", 0)),
        (" 192.0.2.43 ", ("192.0.2.43", 0)),
        ("192.0.2.43:47011", ("192.0.2.43", 47011)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("2001:DB8:0::1", ("2001:db8::1", 0)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("[2001:db8::1]:4711", ("2001:db8::1", 4711)),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("192.0.2.43:", None),
        ("192.0.2.43:0", None),
        ("192.0.2.43:65536", None),
        ("192.0.2.43:" + "9" * 5000, None),
        ("[2001:db8::1]x", None),
        ("[2001:db8::1", None),
        ("300.1.1.1", None),
        ("example.com", None),
    ],
)
def test_parse_node(text: str, node: tuple[str, int] | None) -> None:
    assert parse_node(text) == node


@pytest.mark.parametrize(
    ("value", "elements"),
    [
        ("for=192.0.2.60", [{"for": "192.0.2.60"}]),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        ),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        ('for="a\\"b"', [{"for": 'a"b'}]),
        ('for="x,y";host="h"', [{"for": "x,y", "host": "h"}]),
        ("for=a,,for=b", [{"for": "a"}, {"for": "b"}]),
        ("for=a ; proto=https", [{"for": "a", "proto": "https"}]),
        ("", None),
        ("for", None),
        ("for=", None),
        ("for=a;for=b", None),  # a parameter twice in one element
        ('for="unterminated', None),
        ("for=a b", None),
        ("=a", None),
        ("for=[2001:db8::1]", None),  # must be quoted: [ and : are not token characters
    ],
)
def test_parse_forwarded(value: str, elements: list[dict[str, str]] | None) -> None:
    assert parse_forwarded(value) == elements


@pytest.mark.parametrize(
    ("hops", "index"),
    [
        (["6.6.6.6"], 0),
        (["6.6.6.6", "1.2.3.4"], 1),  # the right-most untrusted hop: 6.6.6.6 may be forged
        (["6.6.6.6", "1.2.3.4", "10.0.0.2"], 1),  # trusted proxies skipped from the right
        (["10.0.0.3", "10.0.0.2"], 0),  # every hop trusted: the left-most
        (["1.2.3.4", "unknown", "10.0.0.2"], 1),  # a non-address hop is not a trusted proxy
        (["1.2.3.4", "[::1]:80"], 0),
    ],
)
def test_client_index(hops: list[str], index: int) -> None:
    assert client_index(hops, LOCAL) == index


def test_client_index_trusting_everyone_takes_the_left_most() -> None:
    assert client_index(["6.6.6.6", "1.2.3.4"], ProxyTrust(["*"])) == 0


@pytest.mark.parametrize(
    ("entries", "peer", "trusted"),
    [
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["127.0.0.1"], "::ffff:127.0.0.1", True),  # dual-stack listener, IPv4 peer
        (["10.0.0.0/8"], "10.200.0.1", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["::1"], "::1", True),
        (["2001:db8::/32"], "2001:db8::5", True),
        (["127.0.0.1"], None, False),  # unix-socket peer
        (["unix"], None, True),
        (["unix"], "127.0.0.1", False),
        (["*"], "203.0.113.9", True),
        (["*"], None, True),
        ([], "127.0.0.1", False),
        (["127.0.0.1"], "not-an-address", False),
    ],
)
def test_trust(entries: list[str], peer: str | None, trusted: bool) -> None:
    trust = ProxyTrust(entries)
    assert trust.trusts(peer) is trusted
    assert trust.trusts(peer) is trusted  # and again, from the cache


@pytest.mark.parametrize("bad", ["localhost", "10.0.0.1/8", "1.2.3", "unix:/run/x.sock"])
def test_bad_trust_entry_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="forwarded_allow_ips") as raised:
        load({"app": "a:b"}, environ={"PREFORK_FORWARDED_ALLOW_IPS": f"::1,{bad}"}, cwd=tmp_path)
    assert raised.value.exit_status == 2


def test_default_trusts_the_local_machine(tmp_path: Path) -> None:
    config = load({"app": "a:b"}, environ={}, cwd=tmp_path)
    assert config.forwarded_allow_ips == ("127.0.0.1", "::1", "unix")


H = list[tuple[bytes, bytes]]
# Fragments the grammar cares about, for the property test below.
SAMPLES: Final = [
    b"for=",
    b'for="[2001:db8::1]:4711"',
    b"for=1.2.3.4;proto=https;host=a:1",
    b"[::1]:80, 10.0.0.1",
    b"https",
    b"a:99999",
    b'"\\',
    b",,;;",
]
CASES: Final[list[tuple[str, H, Forwarded | None]]] = [
    ("nothing usable", [(b"x-forwarded-for", b"garbage")], None),
    (
        "nginx: client and scheme",
        [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")],
        Forwarded(("203.0.113.7", 0), "https", SOCKET, None),
    ),
    (
        "a forged hop left of the real client is ignored",
        [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.7")],
        Forwarded(("203.0.113.7", 0), "http", SOCKET, None),
    ),
    (
        "several X-Forwarded-For lines form one list",
        [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-for", b"10.0.0.2")],
        Forwarded(("203.0.113.7", 0), "http", SOCKET, None),
    ),
    (
        "the right-most proto, case-insensitive",
        [(b"x-forwarded-proto", b"http, HTTPS")],
        Forwarded(None, "https", SOCKET, None),
    ),
    ("an unknown proto is ignored", [(b"x-forwarded-proto", b"gopher")], None),
    (
        "forwarded host and port",
        [(b"x-forwarded-host", b"example.com"), (b"x-forwarded-port", b"8443")],
        Forwarded(None, "http", ("example.com", 8443), b"example.com:8443"),
    ),
    (
        "host with its port, https default port dropped from Host",
        [(b"x-forwarded-host", b"example.com:443"), (b"x-forwarded-proto", b"https")],
        Forwarded(None, "https", ("example.com", 443), b"example.com"),
    ),
    (
        "port alone rewrites the request's Host",
        [(b"x-forwarded-port", b"8080")],
        Forwarded(None, "http", ("app.test", 8080), b"app.test:8080"),
    ),
    (
        "IPv6 host",
        [(b"x-forwarded-host", b"[2001:db8::1]:8080")],
        Forwarded(None, "http", ("2001:db8::1", 8080), b"[2001:db8::1]:8080"),
    ),
    ("a malformed host is ignored", [(b"x-forwarded-host", b"exa mple")], None),
    ("a malformed port is ignored", [(b"x-forwarded-port", b"99999")], None),
    (
        "Forwarded: the client's element gives proto and host",
        [(b"forwarded", b'for="[2001:db8::1]:4711";proto=https;host=example.com, for=10.0.0.2')],
        Forwarded(("2001:db8::1", 4711), "https", ("example.com", 443), b"example.com"),
    ),
    (
        "Forwarded: for=unknown is not believed, proto is",
        [(b"forwarded", b"for=unknown;proto=https")],
        Forwarded(None, "https", SOCKET, None),
    ),
    ("Forwarded: malformed, ignored", [(b"forwarded", b"for=a;for=b")], None),
    (
        "X-Forwarded-* present: Forwarded ignored",
        [(b"forwarded", b"for=6.6.6.6;proto=https"), (b"x-forwarded-for", b"203.0.113.7")],
        Forwarded(("203.0.113.7", 0), "http", SOCKET, None),
    ),
]


@pytest.mark.parametrize(("case", "headers", "expected"), CASES, ids=[c[0] for c in CASES])
def test_resolve(case: str, headers: H, expected: Forwarded | None) -> None:
    all_headers = [(b"host", b"app.test"), *headers]
    assert resolve(all_headers, LOCAL, "http", SOCKET, b"app.test") == expected


def test_with_host_replaces_in_place() -> None:
    headers = [(b"host", b"a"), (b"accept", b"*/*")]
    assert with_host(headers, b"b") == [(b"host", b"b"), (b"accept", b"*/*")]
    assert with_host([(b"accept", b"*/*")], b"b") == [(b"accept", b"*/*"), (b"host", b"b")]


_FIELD_VALUES = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_FIELDS = st.lists(
    st.tuples(st.sampled_from(sorted(NAMES)), st.one_of(_FIELD_VALUES, st.sampled_from(SAMPLES))),
    max_size=4,
)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(_FIELDS)
def test_resolve_never_raises(fields: H) -> None:
    # Whatever a peer sends, a well-formed view or None: never an exception (a 500).
    view = resolve([(b"host", b"app.test"), *fields], LOCAL, "http", SOCKET, b"app.test")
    if view is not None and view.host is not None:
        assert view.server is not None
