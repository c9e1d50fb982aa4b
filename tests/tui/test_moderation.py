"""Moderation and room commands (/kick /ban /unban /mode /invite /part /query /close):
what each sends, its one-line errors, and the server's refusals shown in the room."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rich.console import Console

from chat_protocol import Message
from chat_tui import commands as c
from chat_tui.completion import candidates
from chat_tui.model import LineKind
from chat_tui.screens.help import help_tables
from chat_tui.state import ChatState
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, in_thread, joined, live_app, texts, wait_until

Connect = Callable[..., RawClient]


@pytest.fixture
def state() -> ChatState:
    s = ChatState("alice")
    s.apply(Message.parse(":alice!a@h JOIN #general"))
    s.switch("#general")
    return s


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/kick bob", [c.Send("KICK #general bob")]),
        ("/kick bob too loud", [c.Send("KICK #general bob :too loud")]),
        ("/kick #other bob bye", [c.Send("KICK #other bob :bye")]),
        ("/ban bob", [c.Send("MODE #general +b bob!*@*")]),
        ("/ban *!*@bad.example", [c.Send("MODE #general +b *!*@bad.example")]),
        ("/ban #other bob", [c.Send("MODE #other +b bob!*@*")]),
        ("/unban bob", [c.Send("MODE #general -b bob!*@*")]),
        ("/mode +m", [c.Send("MODE #general +m")]),
        ("/mode #general +o bob", [c.Send("MODE #general +o bob")]),
        ("/mode +o-v bob bob", [c.Send("MODE #general +o-v bob bob")]),
        ("/mode", [c.Send("MODE #general")]),
        ("/mode alice +i", [c.Send("MODE alice +i")]),
        ("/invite bob", [c.Send("INVITE bob #general")]),
        ("/invite bob random", [c.Send("INVITE bob #random")]),
        ("/part", [c.Part("#general", "")]),
        ("/part #other see you", [c.Part("#other", "see you")]),
        ("/part see you", [c.Part("#general", "see you")]),
        ("/query bob", [c.OpenRoom("bob")]),
    ],
)
def test_room_commands(state: ChatState, line: str, expected: list[c.Effect]) -> None:
    assert c.run(line, state) == expected


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("/kick", "usage: /kick"),
        ("/kick #other", "usage: /kick"),
        ("/kick bad!nick", "not a valid nick"),
        ("/ban", "usage: /ban"),
        ("/ban bad,nick", "not a nick or nick!user@host mask"),
        ("/unban", "usage: /unban"),
        ("/mode #general frob", "are not modes"),
        ("/mode bad!target +m", "not a room or nick"),
        ("/invite", "usage: /invite"),
        ("/invite bob bad room", "not a valid room name"),
        ("/query", "usage: /msg"),
    ],
)
def test_room_command_errors(state: ChatState, line: str, fragment: str) -> None:
    [note] = c.run(line, state)
    assert isinstance(note, c.Note) and note.kind == LineKind.ERROR
    assert fragment in note.text and "\n" not in note.text


def test_outside_a_room_the_room_is_asked_for() -> None:
    state = ChatState("alice")
    for line in ("/kick bob", "/ban bob", "/mode +m", "/invite bob"):
        [note] = c.run(line, state)
        assert isinstance(note, c.Note) and "works in a room" in note.text


def test_close_closes_a_conversation(state: ChatState) -> None:
    state.apply(Message.parse(":bob!b@h PRIVMSG alice :hi"))
    state.switch("bob")
    assert c.run("/close", state) == [c.CloseRoom("bob")]


def test_commands_complete_and_are_in_help() -> None:
    for name in ("kick", "ban", "unban", "mode", "invite", "part", "query", "close", "ignore"):
        assert f"/{name} " in candidates(f"/{name[:3]}", 1 + len(name[:3]), [], [])
        assert name in c.COMMANDS or name in c.ALIASES


def test_help_lists_the_new_commands() -> None:
    console = Console(width=120, record=True)
    console.print(help_tables([("f1", "Help")], 120))
    shown = console.export_text()
    for usage in ("/kick [#room] <nick> [reason]", "/ban", "/unban", "/mode", "/invite"):
        assert usage in shown
    assert "/ignore [nick|mask]" in shown and "/unignore" in shown


def test_error_numerics_go_to_the_room_they_name(state: ChatState) -> None:
    state.apply(Message.parse(":alice!a@h JOIN #ops"))
    state.switch("#general")
    state.apply(Message.parse(":srv 482 alice #ops :You're not channel operator"))
    ops = state.room("#ops")
    assert ops is not None and ops.lines[-1].text == "#ops: You're not channel operator"
    assert ops.lines[-1].kind == LineKind.ERROR
    state.apply(Message.parse(":srv 401 alice nobody :No such nick/channel"))
    general = state.room("#general")
    assert general is not None and general.lines[-1].text == "nobody: No such nick/channel"


async def type_line(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    pilot.app.query_one("#input").value = text
    await pilot.press("enter")


async def test_live_kick_ban_invite_as_op(server: ServerProcess, connect: Connect) -> None:
    app = live_app(server, rooms=("#ops",))
    bob, carol = connect("bob"), connect("carol")
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#ops")  # first in: alice is op
        bob.join("#ops")
        await wait_until(
            pilot, lambda: "bob" in [m.nick for m in app.state.roster.members("#ops")], "bob"
        )
        await type_line(pilot, "/kick bob too loud")
        kick = await in_thread(bob.expect, "KICK")
        assert kick.params == ["#ops", "bob", "too loud"]  # type: ignore[attr-defined]
        await type_line(pilot, "/ban bob")
        await wait_until(
            pilot, lambda: any("+b bob!*@*" in t for t in texts(app, "#ops")), "ban shown"
        )
        await type_line(pilot, "/invite carol")
        invite = await in_thread(carol.expect, "INVITE")
        assert invite.params == ["carol", "#ops"]  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: "invited carol to #ops" in texts(app, "#ops"), "341")
        await type_line(pilot, "/kick nobody")
        await wait_until(
            pilot,
            lambda: any("They aren't on that channel" in t for t in texts(app, "#ops")),
            "441 in #ops",
        )
        await type_line(pilot, "/mode +m")
        await wait_until(pilot, lambda: any("+m" in t for t in texts(app, "#ops")), "mode")


async def test_live_kick_without_op_shows_482_in_the_room(
    server: ServerProcess, connect: Connect
) -> None:
    bob = connect("bob")
    bob.join("#bobs")  # bob is op there
    app = live_app(server, rooms=("#bobs",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#bobs")
        await type_line(pilot, "/kick bob")
        await wait_until(
            pilot,
            lambda: "#bobs: You're not channel operator" in texts(app, "#bobs"),
            "482 in #bobs",
        )
        line = app.state.room("#bobs").lines[-1]  # type: ignore[union-attr]
        assert line.kind == LineKind.ERROR
        await type_line(pilot, "/part #bobs going")
        await in_thread(bob.expect, "PART", pattern="going")
