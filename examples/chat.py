"""A FastAPI chat room over WebSockets: every message is broadcast to everyone in the room.

Serve it from the repository root and open http://127.0.0.1:8000/ in two tabs:

    prefork examples.chat:app

Routes:
    GET /             a one-page chat client (plain JavaScript)
    WS  /ws?name=ann  join the room: each text message sent is broadcast to every
                      member as "ann: message"; joins and leaves are announced

The room lives in the worker's memory, so one worker holds one room.  With
`--workers N` a client only meets the clients its connection landed on; to
span workers, publish through a shared bus (Redis pub/sub, PostgreSQL
LISTEN/NOTIFY) and broadcast what it delivers.

A member that stops reading does not hold the room up: each member has a
bounded outbox drained by its own task, and one that falls MAX_BACKLOG
messages behind is disconnected (close code 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse

MAX_BACKLOG: Final = 256
POLICY_VIOLATION: Final = 1008

app = FastAPI(title="prefork chat example")


class Member:
    def __init__(self, socket: WebSocket, name: str) -> None:
        self.socket = socket
        self.name = name
        self.outbox: asyncio.Queue[str] = asyncio.Queue(MAX_BACKLOG)

    async def pump(self) -> None:
        """Send what the room broadcasts, in order, at the pace this client reads."""
        while True:
            await self.socket.send_text(await self.outbox.get())


class Room:
    def __init__(self) -> None:
        self.members: set[Member] = set()
        self.closing: set[asyncio.Task[None]] = set()  # closes under way, kept alive

    def broadcast(self, text: str) -> None:
        for member in list(self.members):
            try:
                member.outbox.put_nowait(text)
            except asyncio.QueueFull:
                self.members.discard(member)  # too slow: its pump is cancelled on close
                task = asyncio.create_task(member.socket.close(POLICY_VIOLATION, "too far behind"))
                self.closing.add(task)
                task.add_done_callback(self.closing.discard)


room = Room()


@app.websocket("/ws")
async def chat(socket: WebSocket, name: str = "anonymous") -> None:
    await socket.accept()
    member = Member(socket, name)
    room.members.add(member)
    pump = asyncio.create_task(member.pump())
    room.broadcast(f"* {name} joined ({len(room.members)} here)")
    try:
        while True:
            room.broadcast(f"{name}: {await socket.receive_text()}")
    except WebSocketDisconnect:
        pass
    finally:
        room.members.discard(member)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        room.broadcast(f"* {name} left")


@app.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse(PAGE)


PAGE: Final = """<!doctype html>
<title>prefork chat</title>
<ul id="log"></ul>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<script>
const name = prompt("Your name?") || "anonymous";
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/ws?name=${encodeURIComponent(name)}`);
ws.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  document.getElementById("log").appendChild(item);
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  ws.send(input.value);
  input.value = "";
};
</script>
"""
