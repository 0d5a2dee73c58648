"""The framework benchmark apps: one JSON endpoint in FastAPI, one in Flask.

Each answers `GET /json` with `{"message": "Hello, World!"}` the way an
application written in that framework ordinarily would (a dict returned from
the route; the framework serialises it), so the figures include the
framework's routing, request object and response machinery: what a user of
the framework gets from each server.  Every server runs these same objects.

    python -m prefork benchmarks.frameworks:fastapi_app -w 2
    python -m prefork benchmarks.frameworks:flask_app -w 2
"""

from __future__ import annotations

from typing import Final

import fastapi
import flask

MESSAGE: Final = {"message": "Hello, World!"}

fastapi_app: Final = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@fastapi_app.get("/json")
async def fastapi_json() -> dict[str, str]:
    return MESSAGE


flask_app: Final = flask.Flask(__name__)


@flask_app.get("/json")
def flask_json() -> dict[str, str]:
    return MESSAGE
