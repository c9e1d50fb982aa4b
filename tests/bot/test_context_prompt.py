"""Room memory (with join replay) and the messages sent to the model."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.context import Line, Memories, RoomMemory, line_from
from bot.prompt import build_messages
from chat_protocol import Message


def test_line_from_privmsg_and_action() -> None:
    line = line_from(
        Message.parse("@time=2024-05-01T10:15:00.000Z;msgid=m1 :alice!a@h PRIVMSG #r :hi\x02!")
    )
    assert line is not None
    assert line.render() == "[10:15] alice: hi!"
    assert line.msgid == "m1"
    action = line_from(Message.parse(":bob!b@h PRIVMSG #r :\x01ACTION waves\x01"))
    assert action is not None and action.action and action.render().endswith("* bob waves")
    assert line_from(Message.parse(":bob!b@h PRIVMSG #r :\x01VERSION\x01")) is None
    assert line_from(Message.parse(":bob!b@h NOTICE #r :hi")) is None


def test_memory_keeps_last_n_and_drops_replayed_duplicates() -> None:
    mem = RoomMemory(3)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(5):
        assert mem.add(Line(at, "a", f"l{i}", msgid=f"id{i}"))
    assert not mem.add(Line(at, "a", "l4", msgid="id4"))  # live copy of a replayed line
    assert [ln.text for ln in mem.lines] == ["l2", "l3", "l4"]
    assert mem.total == 5


def test_transcript_excludes_the_question() -> None:
    mem = RoomMemory(10)
    at = datetime(2024, 1, 1, 9, 5, tzinfo=UTC)
    mem.add(Line(at, "alice", "the meeting is at 3"))
    question = Line(at, "bob", "bot: when is the meeting?")
    mem.add(question)
    assert mem.transcript(exclude=question) == ["[09:05] alice: the meeting is at 3"]


def test_memories_are_per_room_casefolded() -> None:
    mems = Memories(5)
    assert mems.get("#Room") is mems.get("#room")
    assert mems.get("#room") is not mems.get("#other")


def test_memories_can_differ_per_room() -> None:
    mems = Memories(5, size_for=lambda target: 2 if target.lower() == "#small" else 5)
    assert mems.get("#Small").size == 2
    assert mems.get("#big").size == 5


def test_memories_forget_the_least_recently_used() -> None:
    mems = Memories(5, max_targets=2)
    a = mems.get("alice")
    mems.get("bob")
    assert mems.get("alice") is a  # alice is now the most recent
    mems.get("carol")  # bob is dropped
    assert mems.get("alice") is a
    assert mems.get("bob") is not None and len(mems._rooms) == 2


def test_build_messages() -> None:
    msgs = build_messages(
        system_prompt="Be kind.",
        bot_nick="bot",
        target="#room",
        asker="alice",
        question="summarise",
        transcript=["[09:00] bob: hello", "[09:01] carol: hi bob"],
        now=datetime(2024, 5, 1, 9, 2, tzinfo=UTC),
    )
    assert msgs[0]["role"] == "system"
    assert msgs[0]["content"].startswith("Be kind.")
    assert "#room" in msgs[0]["content"] and "2024-05-01 09:02 UTC" in msgs[0]["content"]
    assert "[09:01] carol: hi bob" in msgs[1]["content"]
    assert msgs[-1] == {"role": "user", "content": "alice asks: summarise"}


def test_build_messages_private_and_without_context() -> None:
    msgs = build_messages(
        system_prompt="P", bot_nick="bot", target="alice", asker="alice", question="q",
        transcript=[],
    )  # fmt: skip
    assert len(msgs) == 2
    assert "private chat with alice" in msgs[0]["content"]


def test_replayed_lines_fill_the_memory_but_not_the_statistics() -> None:
    mem = RoomMemory(10)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    mem.add(Line(at, "old", "from the replay", msgid="h1"), live=False)
    mem.add(Line(at, "alice", "live", msgid="l1"))
    assert [ln.text for ln in mem.lines] == ["from the replay", "live"]
    assert mem.total == 1 and mem.by_nick == {"alice": 1}


def test_history_fetched_late_goes_before_newer_live_lines() -> None:
    mem = RoomMemory(10)
    mem.add(Line(datetime(2024, 1, 1, 10, tzinfo=UTC), "alice", "new question", msgid="n"))
    mem.add(Line(datetime(2024, 1, 1, 9, tzinfo=UTC), "alice", "old", msgid="o"), live=False)
    mem.add(Line(datetime(2024, 1, 1, 10, tzinfo=UTC), "alice", "dup", msgid="n"), live=False)
    assert [ln.text for ln in mem.lines] == ["old", "new question"]


def test_line_keeps_the_reply_tag() -> None:
    line = line_from(Message.parse("@msgid=m2;+draft/reply=m1 :a!a@h PRIVMSG #r :why?"))
    assert line is not None and line.reply_to == "m1"


def test_topic_and_replied_line_reach_the_model() -> None:
    msgs = build_messages(
        system_prompt="P", bot_nick="bot", target="#room", asker="alice", question="why?",
        transcript=[], topic="Release 2.0 on Friday", replying_to="alice: use a lock",
    )  # fmt: skip
    assert "The room's topic is: Release 2.0 on Friday" in msgs[0]["content"]
    assert msgs[-1]["content"] == 'alice replies to your line "alice: use a lock": why?'
