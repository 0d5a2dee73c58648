"""`--metrics-bind`: /metrics counts known traffic and parses as Prometheus text; health probes."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.responses import ResponseReader
from tests.server import Serve, Server, prefork_command

APP = "tests.apps.metrics_app:app"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metrics_url(server: Server) -> str:
    return server.wait_for_log(r"Metrics at: (http://\S+)/metrics")[1]


def wait_for_count(url: str, key: tuple[str, tuple[tuple[str, str], ...]], value: float) -> Samples:
    """Scrape until `key` reaches `value` (heartbeats carry counts once a second)."""
    deadline = time.monotonic() + 15
    while True:
        samples = scrape(url)
        if samples.get(key, 0) >= value or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def requests_key(method: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("prefork_requests_total", (("method", method), ("status", status)))


def test_counters_match_known_traffic_and_survive_a_reload(serve: Serve) -> None:
    server = serve(APP, "-w", "2", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(30):
            assert client.get("/").status_code == 200
        for _ in range(5):
            assert client.post("/", content=b"x" * 100).status_code == 200
        for _ in range(4):
            assert client.get("/missing").status_code == 404
        for _ in range(3):
            assert client.get("/boom").status_code == 500
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")  # no Host: refused by prefork
        assert ResponseReader(sock, timeout=10).read().status == 400

    samples = wait_for_count(url, requests_key("GET", "5xx"), 3)
    assert samples[requests_key("GET", "2xx")] == 30
    assert samples[requests_key("POST", "2xx")] == 5
    assert samples[requests_key("GET", "4xx")] == 4
    assert samples[requests_key("GET", "5xx")] == 3
    assert samples[("prefork_rejected_requests_total", (("status", "400"),))] == 1
    assert samples[("prefork_request_duration_seconds_count", ())] == 42
    assert samples[("prefork_request_duration_seconds_bucket", (("le", "+Inf"),))] == 42
    assert samples[("prefork_response_body_bytes_total", ())] >= 30 * 5 + 5 * 5 + 4 * 2
    assert samples[("prefork_received_bytes_total", ())] >= 500
    assert samples[("prefork_workers", (("state", "ready"),))] == 2
    build = [v for (name, _), v in samples.items() if name == "prefork_build_info"]
    assert build == [1]
    rss = [v for (name, _), v in samples.items() if name == "prefork_worker_resident_memory_bytes"]
    assert len(rss) == 2 and all(v > 1_000_000 for v in rss)

    # A reload replaces both workers: what they counted is kept.
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    server.wait_for_log("Reload complete", start=mark)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/").status_code == 200
    after = wait_for_count(url, requests_key("GET", "2xx"), 31)
    assert after[requests_key("GET", "2xx")] == 31
    assert after[requests_key("POST", "2xx")] == 5
    assert after[("prefork_reloads_total", (("result", "ok"),))] == 1
    assert after[("prefork_worker_restarts_total", (("reason", "reload"),))] == 2


def test_health_and_readiness_probes(serve: Serve) -> None:
    server = serve(APP, "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    assert httpx.get(url + "/healthz", timeout=10).text == "ok\n"
    assert httpx.get(url + "/readyz", timeout=10).status_code == 200
    assert httpx.get(url + "/other", timeout=10).status_code == 404
    assert httpx.post(url + "/metrics", timeout=10).status_code == 405
    head = httpx.head(url + "/metrics", timeout=10)
    assert head.status_code == 200 and head.content == b""
    # A client that never sends its request does not block the master.
    with socket.create_connection(_address(url), timeout=10):
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_readyz_is_503_while_stopping(serve: Serve) -> None:
    # --threads: the loop keeps sending heartbeats (with the in-flight count)
    # while the app sleeps.
    server = serve(APP, "--metrics-bind", "127.0.0.1:0", "--threads", "2")
    url = metrics_url(server)
    slow = threading.Thread(target=httpx.get, args=(server.url + "/sleep",), daemon=True)
    slow.start()
    deadline = time.monotonic() + 10
    while scrape(url).get(("prefork_requests_in_flight", ()), 0) < 1:
        assert time.monotonic() < deadline, "the slow request never reached the worker"
        time.sleep(0.1)
    server.signal(signal.SIGTERM)  # the worker drains its 3 s request
    server.wait_for_log("Stopping")
    assert httpx.get(url + "/readyz", timeout=10).status_code == 503
    assert httpx.get(url + "/healthz", timeout=10).status_code == 200
    slow.join(30)


def test_bad_metrics_bind_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        prefork_command(APP, "--metrics-bind", "nonsense"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--metrics-bind" in result.stderr
