"""The protocol checks (prefork.http.checks) against an independent reading of RFC 9112.

Hypothesis generates parsed request heads, mostly well-formed with one odd
field at a time; `check_head` must reject exactly what `rfc_model` rejects,
with the same status.
"""

from __future__ import annotations

from typing import Final

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from prefork.errors import ProtocolError
from prefork.http import checks
from tests.http_strategies import HOSTILE_BYTES, from_alphabet, paths


@settings(
    derandomize=True,
    max_examples=1000,
    deadline=None,
    database=None,
    # Skip the explain phase: on a failure it costs tens of seconds here.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
@given(
    method=st.sampled_from([b"GET", b"POST", b"OPTIONS", b"CONNECT"]),
    # Mostly well-formed pieces, so one odd field at a time decides the outcome.
    target=st.one_of(
        st.sampled_from([b"/", b"/a?b=c", b"*", b"http://example.com/x", b"example.com:443"]),
        paths,
        from_alphabet(HOSTILE_BYTES + b"/:htps", 0, 20),
    ),
    version=st.sampled_from(["1.1", "1.0", "2.0", "0.9", "1.2"]),
    hosts=st.integers(0, 3),
    host=st.one_of(
        st.sampled_from([b"example.com", b"", b"[::1]:80", b"a.example:8080"]),
        from_alphabet(HOSTILE_BYTES + b"example.com[]:@", 0, 20),
    ),
    transfer_encoding=st.one_of(
        st.none(),
        st.lists(
            st.sampled_from([b"chunked", b"gzip", b"Chunked", b" chunked ", b"x", b""]),
            min_size=1,
            max_size=3,
        ).map(b",".join),
    ),
    content_length=st.integers(-1, 10_000),
    limit_body=st.sampled_from([0, 1024]),
)
def test_check_head_matches_rfc_model(
    method: bytes,
    target: bytes,
    version: str,
    hosts: int,
    host: bytes,
    transfer_encoding: bytes | None,
    content_length: int,
    limit_body: int,
) -> None:
    """check_head accepts exactly what an independent reading of RFC 9112 accepts."""
    try:
        checks.check_head(
            method, target, version, hosts, host, transfer_encoding, content_length, limit_body
        )
        status = 0
    except ProtocolError as exc:
        status = exc.status
    expected = rfc_model(
        method, target, version, hosts, host, transfer_encoding, content_length, limit_body
    )
    assert status == expected, (status, expected)


_AUTHORITY: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:[]%"
)


def rfc_model(
    method: bytes,
    target: bytes,
    version: str,
    hosts: int,
    host: bytes,
    transfer_encoding: bytes | None,
    content_length: int,
    limit_body: int,
) -> int:
    """The status RFC 9112 implies for a parsed head (0: accept), written independently."""
    if version not in ("1.0", "1.1"):
        return 505
    if hosts > 1 or (version == "1.1" and hosts == 0):
        return 400  # RFC 9112 3.2: any request with two Host lines
    if hosts and not set(host) <= _AUTHORITY:
        return 400
    origin = target.startswith(b"/")
    absolute = target.lower().startswith((b"http://", b"https://")) and method != b"CONNECT"
    asterisk = target == b"*" and method == b"OPTIONS"
    if not (origin or absolute or asterisk) or b"#" in target:
        return 400
    if transfer_encoding is not None:
        if version == "1.0":
            return 400
        codings = [c.strip().lower() for c in transfer_encoding.split(b",")]
        if codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
            return 400
        if codings != [b"chunked"]:
            return 501
        return 0
    if limit_body and content_length > limit_body:
        return 413
    return 0


def test_host_table_changes_exactly_the_bytes_outside_host_chars() -> None:
    # The hot path's Host test (HttpConnection.on_headers_complete) must agree
    # with check_head's, byte for byte.
    for byte in range(256):
        host = b"a" + bytes([byte]) + b"b"
        changed = host.translate(checks.HOST_TABLE) != host
        assert changed == bool(host.translate(None, checks.HOST_CHARS)), byte
