"""examples/chat.py served by prefork: a FastAPI chat room broadcasting to many clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.server import Server, run_server

MEMBERS = 50


@pytest.fixture(scope="module")
def chat() -> Iterator[Server]:
    with run_server("examples.chat:app") as server:
        yield server


async def join(url: str, name: str) -> ClientConnection:
    ws = await connect(f"{url}/ws?name={name}")
    while not str(await ws.recv()).startswith(f"* {name} joined"):
        pass  # earlier joins may arrive first
    return ws


async def next_chat_line(ws: ClientConnection) -> str:
    while (line := str(await ws.recv())).startswith("* "):
        pass  # join and leave announcements
    return line


def test_the_page_is_served(chat: Server) -> None:
    response = httpx.get(chat.url + "/")
    assert response.status_code == 200
    assert "new WebSocket" in response.text


def test_a_message_reaches_every_member(chat: Server) -> None:
    url = chat.url.replace("http://", "ws://")

    async def go() -> list[str]:
        members = [await join(url, f"m{i}") for i in range(MEMBERS)]
        try:
            await members[7].send("hello, room")
            return list(await asyncio.gather(*(next_chat_line(ws) for ws in members)))
        finally:
            await asyncio.gather(*(ws.close() for ws in members))

    lines = asyncio.run(asyncio.wait_for(go(), 60))
    assert lines == ["m7: hello, room"] * MEMBERS


def test_leaving_is_announced(chat: Server) -> None:
    url = chat.url.replace("http://", "ws://")

    async def go() -> str:
        stays = await join(url, "stays")
        leaves = await join(url, "leaves")
        await leaves.close()
        try:
            while (line := str(await stays.recv())) != "* leaves left":
                pass
            return line
        finally:
            await stays.close()

    assert asyncio.run(asyncio.wait_for(go(), 30)) == "* leaves left"
