"""A FastAPI application: JSON, forms, uploads, streaming and background tasks.

Serve it from the repository root:

    prefork examples.fastapi_app:app --workers 2

Routes:
    GET  /                  {"message": ...}
    POST /items             JSON body {"name": str, "price": float} -> the item with a total
    POST /form              form fields `name` and `tags` (repeatable) -> JSON
    POST /upload            UploadFile `file` -> {"name", "size", "sha256"}
    GET  /stream?n=5&delay=0.1
                            StreamingResponse from an async generator
    POST /tasks/{label}?delay=0
                            answers at once, then a BackgroundTasks task runs after the
                            response was sent; it waits `delay` seconds, then appends
                            "label pid" to the file named by $PREFORK_EXAMPLE_TASK_LOG
                            (if set) and to this worker's in-memory list
    GET  /tasks             the tasks this worker has completed
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import BackgroundTasks, FastAPI, Form, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI(title="prefork example")

CHUNK = 64 * 1024
TASK_LOG_ENV = "PREFORK_EXAMPLE_TASK_LOG"
completed_tasks: list[str] = []


class Item(BaseModel):
    name: str
    price: float
    quantity: int = 1


@app.get("/")
async def index() -> dict[str, str]:
    return {"message": "Hello from FastAPI!"}


@app.post("/items")
async def create_item(item: Item) -> dict[str, object]:
    return {
        "name": item.name,
        "price": item.price,
        "quantity": item.quantity,
        "total": item.price * item.quantity,
    }


@app.post("/form")
async def form(
    name: Annotated[str, Form()], tags: Annotated[list[str] | None, Form()] = None
) -> dict[str, object]:
    return {"name": name, "tags": tags or []}


@app.post("/upload")
async def upload(file: UploadFile) -> dict[str, object]:
    digest = hashlib.sha256()
    size = 0
    while chunk := await file.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return {"name": file.filename, "size": size, "sha256": digest.hexdigest()}


@app.get("/stream")
async def stream(n: int = 5, delay: float = 0.1) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        for index in range(n):
            if index:
                await asyncio.sleep(delay)
            yield f"chunk {index}\n".encode()

    return StreamingResponse(generate(), media_type="text/plain")


def record_task(label: str, delay: float) -> None:
    # A sync task: Starlette runs it in a thread pool, so sleeping blocks nobody.
    time.sleep(delay)
    line = f"{label} {os.getpid()}"
    completed_tasks.append(line)
    path = os.environ.get(TASK_LOG_ENV)
    if path:
        # One short append per line: O_APPEND keeps lines whole across workers.
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@app.post("/tasks/{label}", status_code=202)
async def start_task(label: str, tasks: BackgroundTasks, delay: float = 0.0) -> dict[str, str]:
    tasks.add_task(record_task, label, delay)
    return {"queued": label}


@app.get("/tasks")
async def list_tasks() -> dict[str, object]:
    return {"pid": os.getpid(), "completed": completed_tasks}
