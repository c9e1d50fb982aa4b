"""Built-in commands: exact phrasings only, and useful answers without any AI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.commands import COMMANDS, CommandContext, find_command
from bot.context import Line, RoomMemory
from bot.triggers import Request


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("help", "help"),
        ("!help", "help"),
        ("Help?", "help"),
        ("time", "time"),
        ("what time is it?", "time"),
        ("who", "who"),
        ("who is here?", "who"),
        ("Who's  here", "who"),
        ("stats", "stats"),
        ("room stats", "stats"),
        ("who won the match?", None),
        ("help me write a poem", None),
        ("", None),
    ],
)
def test_find_command(text: str, name: str | None) -> None:
    cmd = find_command(text)
    assert (cmd.name if cmd else None) == name


def ctx(text: str, target: str = "#room", **kw: object) -> CommandContext:
    memory = RoomMemory(10)
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for i, nick in enumerate(["alice", "bob", "alice", "alice"]):
        memory.add(Line(at, nick, f"line {i}"))
    return CommandContext(
        request=Request("alice", target, text),
        bot_nick="bot",
        memory=memory,
        now=datetime(2024, 5, 1, 12, 30, 5, tzinfo=UTC),
        **kw,  # type: ignore[arg-type]
    )


def run(name: str, context: CommandContext) -> list[str]:
    return COMMANDS[name].handler(context)


def test_help_names_every_command_and_ai_status() -> None:
    out = run("help", ctx("help", ai_status="AI answers: off (no API key configured)."))
    text = " ".join(out)
    for name in COMMANDS:
        assert name in text
    assert "bot: your question" in text and "AI answers: off" in text


def test_time() -> None:
    assert run("time", ctx("time")) == ["It is Wednesday 2024-05-01 12:30:05 UTC."]


def test_who_lists_members_and_marks_bots() -> None:
    out = run("who", ctx("who", members={"alice": "@", "bob": "", "bot": "", "Helper": "+"},
                         bots={"bot", "helper"}))  # fmt: skip
    assert out == ["#room: 2 people, 2 bots: @alice, bob, bot (bot), +Helper (bot)"]


def test_who_in_private_chat() -> None:
    assert "in a room" in run("who", ctx("who", target="alice"))[0]


def test_stats() -> None:
    out = run("stats", ctx("stats", members={"alice": "", "bob": ""}))[0]
    assert "4 messages seen" in out
    assert "2 members now" in out
    assert "most active: alice (3), bob (1)" in out
