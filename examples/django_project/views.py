"""Views of the example project: a page, a form, an upload and a streamed response."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar, cast

from django.core.handlers.asgi import ASGIRequest  # type: ignore[import-untyped]
from django.http import (  # type: ignore[import-untyped]
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.views.decorators import csrf, http  # type: ignore[import-untyped]

CHUNK = 64 * 1024

View = TypeVar("View", bound=Callable[..., Any])


# Django ships no type information; these keep the views' signatures visible to mypy.
def csrf_exempt(view: View) -> View:
    return cast(View, csrf.csrf_exempt(view))


def require_get(view: View) -> View:
    return cast(View, http.require_GET(view))


def require_post(view: View) -> View:
    return cast(View, http.require_POST(view))


@require_get
def index(request: HttpRequest) -> HttpResponse:
    interface = "asgi" if isinstance(request, ASGIRequest) else "wsgi"
    return HttpResponse(f"Hello from Django over {interface}!\n", content_type="text/plain")


@csrf_exempt
@require_post
def form(request: HttpRequest) -> JsonResponse:
    return JsonResponse({key: request.POST.getlist(key) for key in request.POST})


@csrf_exempt
@require_post
def upload(request: HttpRequest) -> JsonResponse:
    uploaded = request.FILES.get("file")
    if uploaded is None:
        return JsonResponse(
            {"error": "send the file in a multipart field named 'file'"}, status=400
        )
    digest = hashlib.sha256()
    for chunk in uploaded.chunks(CHUNK):
        digest.update(chunk)
    return JsonResponse(
        {
            "name": uploaded.name,
            "size": uploaded.size,
            "sha256": digest.hexdigest(),
            "pid": os.getpid(),
        }
    )


@require_get
def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("n", "5"))
    delay = float(request.GET.get("delay", "0.1"))

    # Django warns when an ASGI server is handed a sync iterator (it must consume it
    # in a thread) and when WSGI is handed an async one; give each server its kind.
    def generate() -> Iterator[bytes]:
        for index in range(count):
            if index:
                time.sleep(delay)
            yield f"chunk {index}\n".encode()

    async def agenerate() -> AsyncIterator[bytes]:
        for index in range(count):
            if index:
                await asyncio.sleep(delay)
            yield f"chunk {index}\n".encode()

    body = agenerate() if isinstance(request, ASGIRequest) else generate()
    return StreamingHttpResponse(body, content_type="text/plain")
