"""Fixtures for the bot: the fake OpenAI-compatible server and real chat-bot processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import ServerProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_api() -> Iterator[FakeOpenAI]:
    """A fresh fake chat-completions server (key ``sk-test-key``)."""
    with FakeOpenAI() as api:
        yield api


class BotProcess:
    """``python -m bot`` as a user runs it; its log is collected for waiting on."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.log: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))

    def wait_log(self, needle: str, timeout: float = 30.0, count: int = 1) -> str:
        """Wait until ``count`` log lines contain ``needle``; fail with the log if they never do."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [line for line in list(self.log) if needle in line]
            if len(hits) >= count:
                return hits[count - 1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise TimeoutError(f"bot log has no {needle!r}:\n" + "\n".join(self.log[-40:]))

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


StartBot = Callable[..., BotProcess]


@pytest.fixture
def start_bot(server: ServerProcess, fake_api: FakeOpenAI) -> Iterator[StartBot]:
    """Start chat-bot against ``server`` and ``fake_api``; waits until it joined its rooms.

    ``start_bot("--rooms", "#a", nick="bot", key=True)``; rate limits are off unless a
    test passes its own ``--user-rate``/``--room-rate``.
    """
    bots: list[BotProcess] = []

    def start(*flags: str, nick: str = "bot", key: bool = True, rooms: str = "#room") -> BotProcess:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["PYTHONUNBUFFERED"] = "1"
        if key:
            env["OPENAI_API_KEY"] = "sk-test-key"
        args = [
            "--server", server.address, "--nick", nick, "--rooms", rooms,
            "--base-url", fake_api.base_url, "--model", "fake/model",
            "--user-rate", "off", "--room-rate", "off", "--send-rate", "50/1",
            *flags,
        ]  # fmt: skip
        bot = BotProcess(args, env)
        bots.append(bot)
        for room in rooms.split(","):
            if room:
                bot.wait_log(f"joined {room}")
        return bot

    yield start
    for bot in bots:
        bot.stop()
