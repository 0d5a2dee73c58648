"""Hypothesis building blocks for HTTP requests, shared by the fuzzers.

tests/integration/test_fuzz.py builds whole requests from them for a live
server; tests/unit/test_checks_model.py feeds the protocol checks directly.
"""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st

PATH_ALPHABET: Final = b"abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%"


HOSTILE_BYTES: Final = b'\x00\r\n \t\x7f:;,_#?"\\\x01\x0b\x0c\xff0123456789abcdefABCDEF'


def from_alphabet(alphabet: bytes, min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(list(alphabet)), min_size=min_size, max_size=max_size).map(
        bytes
    )


paths = from_alphabet(PATH_ALPHABET.replace(b"%", b""), 0, 30).map(lambda p: b"/" + p)
