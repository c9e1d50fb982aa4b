"""Slash commands: each one's effects, and a one-line error for every mistake."""

from __future__ import annotations

import pytest

from chat_protocol import Message
from chat_tui import commands as c
from chat_tui.model import LineKind
from chat_tui.state import ChatState


@pytest.fixture
def state() -> ChatState:
    s = ChatState("alice")
    s.apply(Message.parse(":alice!a@h JOIN #general"))
    s.switch("#general")
    return s


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", [c.Say("#general", "hello")]),
        ("//slash text", [c.Say("#general", "/slash text")]),
        ("/join random", [c.Join("#random")]),
        ("/j #a,b", [c.Join("#a"), c.Join("#b")]),
        ("/join #secret key1", [c.Join("#secret", "key1")]),
        ("/leave", [c.Part("#general", "")]),
        ("/leave see you", [c.Part("#general", "see you")]),
        ("/part #other bye", [c.Part("#other", "bye")]),
        ("/quit", [c.Quit("Leaving")]),
        ("/quit gone fishing", [c.Quit("gone fishing")]),
        ("/nick alicia", [c.Send("NICK alicia")]),
        ("/msg bob hi there", [c.OpenRoom("bob"), c.Say("bob", "hi there")]),
        ("/query bob", [c.OpenRoom("bob")]),
        ("/me waves", [c.Say("#general", "waves", action=True)]),
        ("/topic New topic", [c.Send("TOPIC #general :New topic")]),
        ("/names", [c.Send("NAMES #general")]),
        ("/who", [c.Send("WHO #general")]),
        ("/who bob", [c.Send("WHO bob")]),
        ("/away lunch", [c.Send("AWAY :lunch")]),
        ("/away", [c.Send("AWAY")]),
        ("/list", [c.ShowScreen("list"), c.Send("LIST")]),
        ("/help", [c.ShowScreen("help")]),
        ("/JOIN #Caps", [c.Join("#Caps")]),
        ("/raw PING x", [c.Send("PING x")]),
        ("/search apple  pie from:bob ", [c.OpenSearch("apple  pie from:bob")]),
        ("/search", [c.OpenSearch("")]),
    ],
)
def test_commands(state: ChatState, line: str, expected: list[c.Effect]) -> None:
    assert c.run(line, state) == expected


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("/frobnicate", "unknown command /frobnicate"),
        ("/join", "usage: /join"),
        ("/join #bad:room", "not a valid room"),
        ("/join bad\x07name", "not a valid room"),
        ("/nick 9lives", "not a valid nick"),
        ("/nick", "usage: /nick"),
        ("/msg", "usage: /msg"),
        ("/msg bad!nick hi", "not a nick or room"),
        ("/me", "usage: /me"),
        ("/help nosuch", "no command /nosuch"),
    ],
)
def test_errors_are_one_line(state: ChatState, line: str, fragment: str) -> None:
    effects = c.run(line, state)
    assert len(effects) == 1
    note = effects[0]
    assert isinstance(note, c.Note) and note.kind == LineKind.ERROR
    assert fragment in note.text and "\n" not in note.text


def test_text_in_server_buffer_is_an_error() -> None:
    state = ChatState("alice")
    [note] = c.run("hello", state)
    assert isinstance(note, c.Note) and note.kind == LineKind.ERROR
    [note] = c.run("/topic hi", state)
    assert isinstance(note, c.Note) and "works in a room" in note.text


def test_topic_without_text_shows_current_topic(state: ChatState) -> None:
    state.apply(Message.parse(":srv 332 alice #general :Be nice"))
    assert c.run("/topic", state) == [c.Note("Topic of #general: Be nice")]


def test_leave_in_conversation_closes_it(state: ChatState) -> None:
    state.apply(Message.parse(":bob!b@h PRIVMSG alice :hi"))
    state.switch("bob")
    assert c.run("/leave", state) == [c.CloseRoom("bob")]


def test_join_of_joined_room_just_opens_it(state: ChatState) -> None:
    state.room("#general").joined = True  # type: ignore[union-attr]
    assert c.run("/join general", state) == [c.OpenRoom("#general")]


def test_empty_line_does_nothing(state: ChatState) -> None:
    assert c.run("   ", state) == []


def test_every_command_has_usage_and_summary() -> None:
    for spec in c.COMMANDS.values():
        assert spec.usage.startswith("/" + spec.name) and spec.summary
    required = {"join", "leave", "list", "quit", "nick", "msg", "me", "topic", "names", "who"}
    assert required | {"away", "help"} <= set(c.COMMANDS)
