"""What the protocol layer is told: its limits, timeouts and switches, as one value.

The worker builds an `HttpSettings` from its Config (worker/compose.py); the
protocol layer reads nothing else, so it can be run, and tested, without a
Config and without knowing which settings exist for other layers.  Each field
has the name, unit and meaning of the Config setting it comes from (see
docs/settings.md); 0 means "no limit" or "off", as there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpSettings:
    keep_alive: float  # seconds an idle connection stays open; 0: close after each response
    header_timeout: float
    body_timeout: float
    send_timeout: float
    request_timeout: float
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_headers: int
    limit_request_body: int
    limit_concurrency: int
    server_header: bool
    forwarded_allow_ips: tuple[str, ...]  # trusted proxies (http/forwarded.py)
    proxy_protocol: bool  # a PROXY header precedes the first request
    request_id: bool  # give each request an X-Request-ID
