"""Private chats come back from the server's history (CHATHISTORY TARGETS + LATEST).

The worker runs in this process on a real ``IRCClient`` against a real chat-server, so
a test can drop its memory the way a long-running bot drops the least recently used
chats, and see it come back over the same connection — the one the server lets read
the direct messages sent while it held the nick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from bot.config import BotConfig, Rate
from bot.llm import ChatBackend
from bot.worker import BotWorker
from chat_protocol.client import ClientConfig, IRCClient, parse_servers
from tests.bot.test_e2e import CAPS, said
from tests.support.fake_openai import FakeOpenAI
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess


@dataclass
class RunningBot:
    worker: BotWorker
    client: IRCClient


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def running_bot(server: ServerProcess, fake_api: FakeOpenAI) -> AsyncIterator[RunningBot]:
    config = BotConfig(
        servers=server.address,
        user_rate=Rate(0, 1.0),
        room_rate=Rate(0, 1.0),
        send_rate=Rate(50, 1.0),
        model="fake/model",
    )
    client = IRCClient(ClientConfig(servers=parse_servers(server.address), nick="bot", bot=True))
    backend = ChatBackend(
        base_url=fake_api.base_url, api_key="sk-test-key", model="fake/model",
        timeout=10, max_tokens=50,
    )  # fmt: skip
    worker = BotWorker(config, client, backend)

    async def pump() -> None:
        async for event in client.events():
            await worker.handle(event)

    tasks = [asyncio.create_task(client.run()), asyncio.create_task(pump())]
    await until(lambda: client.connected and "draft/chathistory" in client.caps)
    yield RunningBot(worker, client)
    await worker.close()
    await client.close()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks)


async def dm(alice: RawClient, text: str) -> str:
    """alice says ``text`` to the bot; the bot's answer (read off the event loop)."""
    alice.send(f"PRIVMSG bot :{text}")
    return await asyncio.to_thread(said, alice, "bot", "alice")


async def test_a_dropped_private_chat_comes_back_from_history(
    running_bot: RunningBot, server: ServerProcess, fake_api: FakeOpenAI
) -> None:
    worker = running_bot.worker
    alice = RawClient(server.host, server.port)
    try:
        await asyncio.to_thread(alice.register, "alice", CAPS)
        assert await dm(alice, "my code is 1234") == "echo: alice asks: my code is 1234"
        # TARGETS names the chat; LATEST brings its lines (question and answer) back.
        worker.memories.forget("alice")
        chats, _ = await worker.reload_direct_chats()
        assert chats == 1
        assert [ln.text for ln in worker.memories.get("alice").lines] == [
            "my code is 1234",
            "echo: alice asks: my code is 1234",
        ]
        # Dropped again, the chat is fetched when alice next asks.
        worker.memories.forget("alice")
        assert await dm(alice, "what is my code?") == "echo: alice asks: what is my code?"
        assert "alice: my code is 1234" in fake_api.requests[-1].all_text
        # A 'forget' in the history holds: what came before it stays forgotten.
        assert await dm(alice, "forget") == "Done: I forgot our conversation."
        worker.memories.forget("alice")
        await worker.reload_direct_chats()
        assert "1234" not in " ".join(ln.text for ln in worker.memories.get("alice").lines)
    finally:
        alice.close()
