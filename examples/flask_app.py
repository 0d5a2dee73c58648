"""A Flask application: a page, a form, a file upload and a streamed response.

Serve it from the repository root:

    prefork examples.flask_app:app --workers 2

Routes:
    GET  /                 a greeting
    POST /form             echoes the form fields as JSON (urlencoded or multipart)
    POST /upload           field `file`: answers {"name", "size", "sha256"}; the file is
                           hashed while it is read, never held in memory whole
    GET  /stream?n=5&delay=0.1
                           n chunks from a generator, `delay` seconds apart: no
                           Content-Length, so the server sends it chunked as it is produced
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

from flask import Flask, Response, jsonify, request

app = Flask(__name__)

CHUNK = 64 * 1024


@app.get("/")
def index() -> Response:
    return Response("Hello from Flask!\n", mimetype="text/plain")


@app.post("/form")
def form() -> Response:
    return jsonify({key: request.form.getlist(key) for key in request.form})


@app.post("/upload")
def upload() -> Response | tuple[Response, int]:
    uploaded = request.files.get("file")
    if uploaded is None:
        return jsonify({"error": "send the file in a multipart field named 'file'"}), 400
    digest = hashlib.sha256()
    size = 0
    while chunk := uploaded.stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return jsonify({"name": uploaded.filename, "size": size, "sha256": digest.hexdigest()})


@app.get("/stream")
def stream() -> Response:
    count = request.args.get("n", default=5, type=int)
    delay = request.args.get("delay", default=0.1, type=float)

    def generate() -> Iterator[str]:
        for index in range(count):
            if index:
                time.sleep(delay)
            yield f"chunk {index}\n"

    return Response(generate(), mimetype="text/plain")
