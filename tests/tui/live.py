"""Helpers for Pilot tests against a real chat-server: build the app, wait for state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot

from chat_protocol.client_types import ServerAddress
from chat_tui.app import ChatApp
from chat_tui.config import Settings
from chat_tui.session import ChatSession
from tests.support.servers import ServerProcess

SIZE = (120, 35)


def live_app(server: ServerProcess, nick: str = "alice", rooms: tuple[str, ...] = ()) -> ChatApp:
    settings = Settings(
        nick=nick, servers=[ServerAddress(server.host, server.port)], rooms=list(rooms)
    )
    return ChatApp(settings, ChatSession(settings))


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], object], what: str, timeout: float = 10.0
) -> None:
    """Let the app run until ``condition()`` holds; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def in_thread(func: Callable[..., object], *args: object, **kwargs: object) -> object:
    """Run a blocking RawClient call without stalling the app's event loop."""
    return await asyncio.to_thread(func, *args, **kwargs)


def texts(app: ChatApp, room: str) -> list[str]:
    found = app.state.room(room)
    return [line.text for line in found.lines] if found else []


async def joined(pilot: Pilot[None], app: ChatApp, *rooms: str) -> None:
    for room in rooms:
        await wait_until(
            pilot,
            lambda r=room: (found := app.state.room(r)) is not None and found.joined,
            f"joined {room}",
        )
