"""The examples in examples/, served by the real `prefork` command, driven like a user would.

Each example gets one server per module (starting Django or FastAPI in two
workers costs a second or two), exercised with httpx and, where a user
would reach for it, curl.  Uploads are 5 MiB of seeded random bytes so the
body crosses many socket reads and, for Django, spills to a temporary file;
the app answers the SHA-256 it computed, which must match ours.

Streaming endpoints produce chunks `delay` seconds apart; the tests check
the response is chunked and that the first chunk arrived well before the
last was produced, i.e. the server did not buffer the whole body.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.responses import ResponseReader
from tests.server import ROOT, Server, prefork_command, run_server

UPLOAD_SIZE = 5 * 1024 * 1024
STREAM_CHUNKS = 5
STREAM_DELAY = 0.2
TIMEOUT = httpx.Timeout(20.0)


@pytest.fixture(scope="module")
def upload_payload() -> bytes:
    return random.Random(1234).randbytes(UPLOAD_SIZE)


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory: pytest.TempPathFactory, upload_payload: bytes) -> Path:
    path = tmp_path_factory.mktemp("upload") / "payload.bin"
    path.write_bytes(upload_payload)
    return path


def client_for(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def check_streamed(client: httpx.Client, path: str = "/stream") -> None:
    """GET a streaming endpoint: chunked framing and incremental arrival."""
    url = f"{path}?n={STREAM_CHUNKS}&delay={STREAM_DELAY}"
    arrivals: list[float] = []
    body = b""
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        for piece in response.iter_raw():
            arrivals.append(time.monotonic())
            body += piece
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(STREAM_CHUNKS))
    produced_over = (STREAM_CHUNKS - 1) * STREAM_DELAY
    # A buffering server delivers everything at once, after the last chunk; a
    # streaming one delivers the first chunk about `produced_over` earlier.
    assert len(arrivals) >= 2, "the whole body arrived in one read"
    assert arrivals[-1] - arrivals[0] >= produced_over / 2, (
        f"body arrived within {arrivals[-1] - arrivals[0]:.3f}s though it was produced "
        f"over {produced_over:.1f}s: the server buffered the streamed response"
    )


def check_upload(
    client: httpx.Client, path: str, payload: bytes, name: str = "payload.bin"
) -> dict[str, object]:
    response = client.post(path, files={"file": (name, payload, "application/octet-stream")})
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    assert result["size"] == len(payload)
    assert result["sha256"] == hashlib.sha256(payload).hexdigest()
    assert result["name"] == name
    return result


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    executable = shutil.which("curl")
    if executable is None:  # pragma: no cover - curl is a documented test requirement
        pytest.fail("curl is not installed")
    return subprocess.run(
        [executable, "--silent", "--show-error", "--max-time", "20", *args],
        capture_output=True,
        timeout=30,
        check=True,
    )


def assert_clean_log(server: Server) -> None:
    assert "Traceback" not in server.log, server.log


# -- the documented commands ------------------------------------------------------------

DOC_COMMAND = re.compile(r"^(?:    )?prefork (\S+:\S+)(.*)$", re.MULTILINE)


def documented_commands() -> list[tuple[str, ...]]:
    sources = [ROOT / "docs" / "examples.md", *sorted((ROOT / "examples").rglob("*.py"))]
    commands = {
        (spec, *extra.split("#")[0].split())
        for source in sources
        for spec, extra in DOC_COMMAND.findall(source.read_text())
    }
    return sorted(commands)


def test_every_example_documents_its_command() -> None:
    specs = {command[0] for command in documented_commands()}
    for path in (ROOT / "examples").glob("*.py"):
        if path.name != "__init__.py":
            assert any(spec.startswith(f"examples.{path.stem}:") for spec in specs), path
    assert "examples.django_project.wsgi:application" in specs
    assert "examples.django_project.asgi:application" in specs


@pytest.mark.parametrize("command", documented_commands(), ids=" ".join)
def test_documented_command_loads_the_app(command: tuple[str, ...]) -> None:
    # --check-config imports the app exactly as serving would, then exits.
    result = subprocess.run(
        prefork_command(*command, "--check-config"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"is an? (wsgi|asgi) application", result.stdout), result.stdout


# -- plain WSGI ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wsgi_hello() -> Iterator[Server]:
    with run_server("examples.wsgi_hello:application", "--workers", "2") as server:
        yield server
    assert_clean_log(server)


def test_wsgi_hello_index(wsgi_hello: Server) -> None:
    with client_for(wsgi_hello) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello, world!\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_wsgi_hello_echo_fixed_and_chunked(wsgi_hello: Server) -> None:
    payload = b"x" * 100_000 + b"end"

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 7_000):
            yield payload[start : start + 7_000]

    with client_for(wsgi_hello) as client:
        fixed = client.post("/echo", content=payload)
        chunked = client.post("/echo", content=pieces())
    assert fixed.status_code == 200
    assert fixed.content == payload
    assert chunked.status_code == 200
    assert chunked.content == payload


def test_wsgi_hello_with_curl(wsgi_hello: Server) -> None:
    result = curl("--include", wsgi_hello.url + "/")
    response = ResponseReader.of_bytes(result.stdout).read()
    assert response.status == 200
    assert response.header(b"content-length") == b"14"
    assert response.body == b"Hello, world!\n"
    echoed = curl("--data-binary", "posted by curl", wsgi_hello.url + "/echo")
    assert echoed.stdout == b"posted by curl"


# -- plain ASGI ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asgi_hello() -> Iterator[Server]:
    with run_server("examples.asgi_hello:app", "--workers", "2") as server:
        yield server
    assert_clean_log(server)


def test_asgi_hello_index_and_echo(asgi_hello: Server) -> None:
    with client_for(asgi_hello) as client:
        index = client.get("/")
        echo = client.post("/echo", content=b"abc" * 50_000)
    assert index.status_code == 200
    assert index.text == "Hello, world!\n"
    assert echo.status_code == 200
    assert echo.content == b"abc" * 50_000


def test_asgi_hello_lifespan_state_reaches_requests(asgi_hello: Server) -> None:
    with client_for(asgi_hello) as client:
        state = client.get("/state").json()
    # Startup ran in the worker that answered, before it served anything.
    assert state["pid"] in asgi_hello.worker_pids()
    assert state["started_at"] <= time.time()


# -- Flask --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["1", "4"], ids=["inline", "threads"])
def flask_server(request: pytest.FixtureRequest) -> Iterator[Server]:
    # --threads 1 runs the app on the event loop with the body buffered first;
    # --threads 4 runs it on a pool, the body streaming to it while it reads.
    threads: str = request.param
    with run_server("examples.flask_app:app", "--workers", "2", "--threads", threads) as server:
        yield server
    assert_clean_log(server)


def test_flask_index(flask_server: Server) -> None:
    with client_for(flask_server) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == "Hello from Flask!\n"


def test_flask_form_urlencoded_and_multipart(flask_server: Server) -> None:
    with client_for(flask_server) as client:
        urlencoded = client.post("/form", data={"name": "Zoë & co", "tag": ["a", "b"]})
        multipart = client.post(
            "/form", data={"name": "Zoë"}, files={"ignored": ("f.txt", b"file part")}
        )
    assert urlencoded.status_code == 200
    assert urlencoded.json() == {"name": ["Zoë & co"], "tag": ["a", "b"]}
    assert multipart.status_code == 200
    assert multipart.json() == {"name": ["Zoë"]}


def test_flask_upload_5mib(flask_server: Server, upload_payload: bytes) -> None:
    with client_for(flask_server) as client:
        check_upload(client, "/upload", upload_payload)


def test_flask_upload_with_curl(
    flask_server: Server, upload_file: Path, upload_payload: bytes
) -> None:
    result = curl("-F", f"file=@{upload_file}", flask_server.url + "/upload")
    answer = json.loads(result.stdout)
    assert answer == {
        "name": "payload.bin",
        "size": len(upload_payload),
        "sha256": hashlib.sha256(upload_payload).hexdigest(),
    }


def test_flask_form_with_curl(flask_server: Server) -> None:
    result = curl("--data-urlencode", "q=a b&c", flask_server.url + "/form")
    assert json.loads(result.stdout) == {"q": ["a b&c"]}


def test_flask_streaming(flask_server: Server) -> None:
    with client_for(flask_server) as client:
        check_streamed(client)


def test_flask_unknown_route_is_404(flask_server: Server) -> None:
    with client_for(flask_server) as client:
        assert client.get("/nope").status_code == 404


# -- FastAPI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def task_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fastapi") / "tasks.log"


@pytest.fixture(scope="module")
def fastapi_server(task_log: Path) -> Iterator[Server]:
    env = {"PREFORK_EXAMPLE_TASK_LOG": str(task_log)}
    with run_server("examples.fastapi_app:app", "--workers", "2", env=env) as server:
        yield server
    assert_clean_log(server)


def test_fastapi_json(fastapi_server: Server) -> None:
    with client_for(fastapi_server) as client:
        index = client.get("/")
        item = client.post("/items", json={"name": "pen", "price": 1.25, "quantity": 4})
        invalid = client.post("/items", json={"name": "pen"})
    assert index.json() == {"message": "Hello from FastAPI!"}
    assert item.status_code == 200
    assert item.json() == {"name": "pen", "price": 1.25, "quantity": 4, "total": 5.0}
    assert invalid.status_code == 422


def test_fastapi_form_urlencoded_and_multipart(fastapi_server: Server) -> None:
    with client_for(fastapi_server) as client:
        urlencoded = client.post("/form", data={"name": "zoë", "tags": ["x", "y"]})
        multipart = client.post(
            "/form", data={"name": "zoë", "tags": ["z"]}, files={"extra": ("e.txt", b"e")}
        )
    assert urlencoded.status_code == 200, urlencoded.text
    assert urlencoded.json() == {"name": "zoë", "tags": ["x", "y"]}
    assert multipart.status_code == 200, multipart.text
    assert multipart.json() == {"name": "zoë", "tags": ["z"]}


def test_fastapi_upload_5mib(fastapi_server: Server, upload_payload: bytes) -> None:
    with client_for(fastapi_server) as client:
        check_upload(client, "/upload", upload_payload)


def test_fastapi_streaming(fastapi_server: Server) -> None:
    with client_for(fastapi_server) as client:
        check_streamed(client)


def test_fastapi_background_task_runs_after_response(
    fastapi_server: Server, task_log: Path
) -> None:
    task_seconds = 1.0
    with client_for(fastapi_server) as client:
        started = time.monotonic()
        response = client.post("/tasks/after-response", params={"delay": task_seconds})
        answered_in = time.monotonic() - started
    assert response.status_code == 202
    assert response.json() == {"queued": "after-response"}
    # The response must not wait for the task (the task sleeps before it records).
    assert answered_in < task_seconds, f"response took {answered_in:.2f}s"
    deadline = time.monotonic() + 15
    # No signal exists for "a background task finished" other than its effect,
    # so this polls the file it writes, with a deadline.
    while "after-response" not in (task_log.read_text() if task_log.exists() else ""):
        assert time.monotonic() < deadline, "background task never completed"
        time.sleep(0.05)
    line = next(x for x in task_log.read_text().splitlines() if x.startswith("after-response"))
    assert int(line.split()[1]) in fastapi_server.worker_pids()


def test_fastapi_background_task_finishes_during_graceful_stop(tmp_path: Path) -> None:
    """SIGTERM right after the response: the task is part of the request, so the
    draining worker must let it finish before exiting (uvicorn does the same)."""
    log = tmp_path / "tasks.log"
    env = {"PREFORK_EXAMPLE_TASK_LOG": str(log)}
    with run_server("examples.fastapi_app:app", "--workers", "1", env=env) as server:
        with client_for(server) as client:
            response = client.post("/tasks/during-stop", params={"delay": 1.0})
        assert response.status_code == 202
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    assert log.exists(), f"the background task was lost on stop; log:\n{server.log}"
    assert log.read_text().startswith("during-stop ")


# -- Django -------------------------------------------------------------------------------

DJANGO_ENTRY_POINTS = {
    # --app-dir form: the project imported as top-level package `django_project`.
    "wsgi": ("django_project.wsgi:application", "--app-dir", str(ROOT / "examples")),
    "wsgi-threads": ("examples.django_project.wsgi:application", "--threads", "4"),
    "asgi": ("examples.django_project.asgi:application",),
}


@pytest.fixture(scope="module", params=sorted(DJANGO_ENTRY_POINTS))
def django_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, Server]]:
    name: str = request.param
    app, *args = DJANGO_ENTRY_POINTS[name]
    with run_server(app, *args, "--workers", "2") as server:
        yield name.partition("-")[0], server


def test_django_index(django_server: tuple[str, Server]) -> None:
    interface, server = django_server
    with client_for(server) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.text == f"Hello from Django over {interface}!\n"
    # Django's SecurityMiddleware ran: the response went through the whole stack.
    assert response.headers["x-content-type-options"] == "nosniff"


def test_django_form_urlencoded_and_multipart(django_server: tuple[str, Server]) -> None:
    _, server = django_server
    with client_for(server) as client:
        urlencoded = client.post("/form", data={"name": "Zoë", "tag": ["a", "b"]})
        multipart = client.post("/form", data={"name": "Zoë"}, files={"f": ("f.txt", b"x")})
    assert urlencoded.status_code == 200, urlencoded.text
    assert urlencoded.json() == {"name": ["Zoë"], "tag": ["a", "b"]}
    assert multipart.status_code == 200, multipart.text
    assert multipart.json() == {"name": ["Zoë"]}


def test_django_upload_5mib(django_server: tuple[str, Server], upload_payload: bytes) -> None:
    _, server = django_server
    with client_for(server) as client:
        result = check_upload(client, "/upload", upload_payload)
    assert result["pid"] in server.worker_pids()


def test_django_streaming(django_server: tuple[str, Server]) -> None:
    _, server = django_server
    with client_for(server) as client:
        check_streamed(client)


def test_django_rejects_unknown_host_and_method(django_server: tuple[str, Server]) -> None:
    _, server = django_server
    with client_for(server) as client:
        bad_host = client.get("/", headers={"Host": "evil.example"})
        wrong_method = client.get("/form")
        missing = client.get("/no-such-page")
    # DEBUG is off: Django answers with its terse production pages.
    assert bad_host.status_code == 400
    assert wrong_method.status_code == 405
    assert missing.status_code == 404
    assert "Traceback" not in missing.text
