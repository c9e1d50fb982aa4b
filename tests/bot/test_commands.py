"""Built-in commands: exact phrasings only, and useful answers without any AI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.commands import COMMANDS, CommandContext, find_command
from bot.context import CutAnswers, Line, RoomMemory
from bot.lines import CUT_NOTE
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


def test_who_has_one_line_whatever_the_room_size() -> None:
    members = {f"user{i:03d}": "" for i in range(500)}
    out = run("who", ctx("who", members=members))
    assert len(out) == 1 and len(out[0].encode()) < 480
    assert out[0].startswith("#room: 500 people, 0 bots: user000, user001")
    assert out[0].endswith(" more")


def test_who_says_one_bot_and_one_person() -> None:
    out = run("who", ctx("who", members={"alice": "", "bot": ""}, bots={"bot"}))
    assert out == ["#room: 1 person, 1 bot: alice, bot (bot)"]


def test_stats_leaves_out_the_bot_itself() -> None:
    context = ctx("stats")
    for _ in range(5):
        context.memory.add(Line(datetime(2024, 5, 1, tzinfo=UTC), "bot", "an answer"))
    out = run("stats", context)[0]
    assert "most active: alice (3), bob (1)" in out and "bot (" not in out


def test_more_pages_through_the_askers_cut_answer() -> None:
    cut = CutAnswers()
    cut.keep("#room", "alice", [f"line {i}" for i in range(5)])
    cut.keep("#room", "bob", ["bob's rest"])
    first = run("more", ctx("more", cut_answers=cut, max_lines=2))
    assert first == ["line 0", "line 1" + CUT_NOTE]
    assert run("more", ctx("more", cut_answers=cut, max_lines=2)) == ["line 2", "line 3" + CUT_NOTE]
    assert run("more", ctx("more", cut_answers=cut, max_lines=2)) == ["line 4"]
    assert "no more" in run("more", ctx("more", cut_answers=cut))[0]
    assert cut.take("#ROOM", "Bob") == ["bob's rest"]  # others' answers are their own
    assert COMMANDS["more"].formatted


def test_forget_in_a_room_drops_the_askers_thread_only() -> None:
    memory = RoomMemory(20)
    at = datetime(2024, 5, 1, tzinfo=UTC)
    memory.add(Line(at, "carol", "unrelated", msgid="c1"))
    memory.add(Line(at, "alice", "bot: my secret is 42", msgid="a1"))
    memory.add(Line(at, "bot", "alice: noted", msgid="b1", reply_to="a1"))
    memory.add(Line(at, "bob", "bot: hi", msgid="x1"))
    memory.add(Line(at, "bot", "bob: hello", msgid="b2", reply_to="x1"))
    memory.add(Line(at, "alice", "and also 43", msgid="a2", reply_to="b1"))
    context = CommandContext(
        request=Request("alice", "#room", "forget"), bot_nick="bot", memory=memory
    )
    assert "3 lines" in run("forget", context)[0]
    assert [ln.text for ln in memory.lines] == ["unrelated", "bot: hi", "bob: hello"]


def test_forget_in_a_private_chat_clears_it() -> None:
    context = ctx("forget", target="alice")
    assert run("forget", context) == ["Done: I forgot our conversation."]
    assert not context.memory.lines


@pytest.mark.parametrize("text", ["summary", "what did I miss?", "catch me up"])
def test_summary_is_a_command_that_needs_the_ai(text: str) -> None:
    cmd = find_command(text)
    assert cmd is not None and cmd.name == "summary" and cmd.uses_ai
