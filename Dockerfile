# prefork serving the example app; replace the COPY of examples/ and the APP
# in CMD with your project.
#
#   docker build -t prefork-example .
#   docker run --rm -p 8000:8000 prefork-example
#
# Why it looks like this:
# - --workers max counts the CPUs the container may use (its cgroup cpu.max
#   quota, e.g. `docker run --cpus 2`), not the host's.
# - prefork runs as PID 1 directly (exec form, no shell): it handles TERM
#   (graceful drain within --graceful-timeout) and reaps every child, so no
#   init shim is needed.  `docker stop -t` must exceed --graceful-timeout.
# - An unprivileged user; no port below 1024 is needed inside the container.
# - Logs go to stderr (error log) and stdout (access log) for the runtime.
# - Two stages: the full python image has the C compiler and headers that
#   compile prefork's hot path (setup.py); the slim image that runs it gets
#   only the built wheel.  The banner's "Hot path:" line says which runs.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY prefork ./prefork
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels && useradd --system --uid 10001 --no-create-home app

COPY examples ./examples
USER app
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["prefork", "examples.wsgi_hello:application", "--bind", "0.0.0.0:8000", "--workers", "max", "--graceful-timeout", "25", "--access-logfile", "-"]
