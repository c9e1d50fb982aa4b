"""Ignore list: masks, what an ignored sender's lines do (nothing), /ignore and /unignore."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chat_protocol import Message
from chat_tui import commands as c
from chat_tui.config import ConfigError, from_mapping, load
from chat_tui.ignore import IgnoreList, normal_mask
from chat_tui.model import LineKind
from chat_tui.state import ChatState
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, in_thread, joined, live_app, texts, wait_until


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("bob", "bob!*@*"),
        ("bob!x", "bob!x@*"),
        ("*@bad.example", "*!*@bad.example"),
        ("bob!*@host", "bob!*@host"),
    ],
)
def test_normal_mask(text: str, mask: str) -> None:
    assert normal_mask(text) == mask


@pytest.mark.parametrize(
    ("masks", "source", "ignored"),
    [
        (["bob"], "bob!b@h", True),
        (["bob"], "BOB!b@h", True),
        (["bob"], "bobby!b@h", False),
        (["*!*@bad.example"], "eve!e@bad.example", True),
        (["*!*@bad.example"], "eve!e@good.example", False),
        (["b?b"], "bab!x@y", True),
        (["bob!*@host"], "bob!b@other", False),
        ([], "bob!b@h", False),
    ],
)
def test_matches(masks: list[str], source: str, ignored: bool) -> None:
    assert IgnoreList(masks).matches(source) is ignored


def test_add_and_remove_are_case_insensitive() -> None:
    ignores = IgnoreList(["Bob"])
    assert ignores.add("bob") is None
    assert ignores.remove("BOB") == "Bob!*@*"
    assert ignores.masks == [] and len(ignores) == 0


def state_with(*masks: str) -> ChatState:
    state = ChatState("alice", ignore=list(masks))
    state.apply(Message.parse(":alice!a@h JOIN #general"))
    state.apply(Message.parse(":alice!a@h JOIN #random"))
    state.switch("#random")
    return state


def test_ignored_sender_is_not_shown_counted_or_alerted() -> None:
    state = state_with("bob")
    general = state.room("#general")
    assert general is not None
    before = len(general.lines)
    for line in [
        ":bob!b@h JOIN #general",
        ":bob!b@h PRIVMSG #general :alice: buy now",
        ":bob!b@h NOTICE #general :spam",
        ":bob!b@h PART #general :bye",
    ]:
        update = state.apply(Message.parse(line))
        assert not update.alerts
    assert len(general.lines) == before
    assert general.unread == 0 and general.mentions == 0
    update = state.apply(Message.parse(":bob!b@h PRIVMSG alice :hi there"))
    assert state.room("bob") is None and not update.alerts  # no conversation opened
    state.apply(Message.parse(":carol!c@h PRIVMSG #general :alice: hello"))
    assert general.unread == 1 and general.lines[-1].nick == "carol"


def test_ignored_join_still_changes_the_member_list() -> None:
    state = state_with("bob")
    state.apply(Message.parse(":bob!b@h JOIN #general"))
    general = state.room("#general")
    assert general is not None and "bob" in [m.nick for m in state.roster.members("#general")]
    assert not any("bob" in line.text for line in general.lines)


def test_own_lines_are_never_ignored() -> None:
    state = state_with("alice")
    state.apply(Message.parse(":alice!a@h PRIVMSG #general :me"))
    assert state.room("#general").lines[-1].text == "me"  # type: ignore[union-attr]


def test_ignore_commands() -> None:
    state = state_with()
    assert c.run("/ignore", state) == [c.Note("nobody is ignored")]
    [note] = c.run("/ignore bob", state)
    assert isinstance(note, c.Note)
    assert "ignoring bob!*@* for this session" in note.text
    assert c.run("/ignore Bob", state) == [c.Note("Bob!*@* is already ignored")]
    c.run("/ignore *!*@bad.example", state)
    assert c.run("/ignore", state) == [c.Note("ignored: bob!*@*, *!*@bad.example")]
    assert state.ignores.matches("bob!b@h")
    [note] = c.run("/unignore bob", state)
    assert note == c.Note("no longer ignoring bob!*@* (for this session)")
    assert not state.ignores.matches("bob!b@h")
    for line, fragment in [
        ("/unignore", "usage: /unignore"),
        ("/unignore nobody", "nobody is not ignored"),
        ("/ignore a b", "not a nick or nick!user@host mask"),
        ("/ignore *!*@*", "not a nick or nick!user@host mask"),  # everyone: surely a slip
    ]:
        [note] = c.run(line, state)
        assert isinstance(note, c.Note) and fragment in note.text


def test_ignore_in_config(tmp_path: Path) -> None:
    path = tmp_path / "chat-tui.toml"
    path.write_text('ignore = ["bob", "*!*@bad.example"]\n')
    assert load(path).ignore == ["bob!*@*", "*!*@bad.example"]
    with pytest.raises(ConfigError, match="ignore"):
        from_mapping({"ignore": ["two words"]})


async def test_live_ignore_hides_one_sender(
    server: ServerProcess, connect: Callable[..., RawClient]
) -> None:
    bob, carol = connect("bob"), connect("carol")
    bob.join("#general")
    carol.join("#general")
    app = live_app(server, rooms=("#general",))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general")
        await in_thread(bob.expect, "JOIN", pattern="alice")
        app.query_one("#input").value = "/ignore bob"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
        assert any("ignoring bob!*@*" in t for t in texts(app, "#general"))
        bob.send("PRIVMSG #general :from bob")
        await in_thread(carol.expect, "PRIVMSG", pattern="from bob")  # sent to alice first
        carol.send("PRIVMSG #general :from carol")
        await wait_until(pilot, lambda: "from carol" in texts(app, "#general"), "carol's line")
        assert "from bob" not in texts(app, "#general")
        room = app.state.room("#general")
        assert room is not None
        assert all(ln.kind != LineKind.MESSAGE or ln.nick != "bob" for ln in room.lines)
