"""Notifications: the exact bytes written to the terminal for a mention, a highlight word
or a direct message out of view, and nothing when the reader is looking at the room."""

from __future__ import annotations

import pytest
from textual import events

from chat_protocol import Message
from chat_tui.app import ChatApp
from chat_tui.config import ConfigError, from_mapping
from chat_tui.notify import Alert, Notifier, clean, tmux_passthrough
from tests.support.servers import ServerProcess
from tests.tui.live import SIZE, in_thread, joined, live_app, wait_until
from tests.tui.scenes import feed, offline_app

SETUP = [
    ":irc.example.net 001 alice :Welcome",
    "@time=2024-03-04T21:00:00.000Z :alice!a@h JOIN #general",
    "@time=2024-03-04T21:00:01.000Z :alice!a@h JOIN #random",
]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def notifier(written: list[str], **kw: object) -> Notifier:
    return Notifier(written.append, **kw)  # type: ignore[arg-type]


# -- the sequences ------------------------------------------------------------------


def test_bell_then_osc_777_then_osc_9() -> None:
    written: list[str] = []
    notifier(written).alert(Alert("#general", "bob", "alice: lunch?"), in_view=False)
    assert written == [
        "\x07\x1b]777;notify;bob in #general;alice: lunch?\x07\x1b]9;alice: lunch?\x07"
    ]


def test_direct_message_title() -> None:
    written: list[str] = []
    notifier(written, bell=False).alert(Alert("bob", "bob", "psst", direct=True), False)
    assert written == ["\x1b]777;notify;bob (direct message);psst\x07\x1b]9;psst\x07"]


def test_inside_tmux_desktop_sequences_pass_through_with_escs_doubled() -> None:
    written: list[str] = []
    notifier(written, tmux=True).alert(Alert("#general", "bob", "hi alice"), False)
    assert written == [
        "\x07"
        "\x1bPtmux;\x1b\x1b]777;notify;bob in #general;hi alice\x07\x1b\\"
        "\x1bPtmux;\x1b\x1b]9;hi alice\x07\x1b\\"
    ]
    assert tmux_passthrough("\x1b]9;x\x07") == "\x1bPtmux;\x1b\x1b]9;x\x07\x1b\\"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("evil\x07\x1b]777;notify;pwned;x\x07", "evil]777;notify;pwned;x"),
        ("\x02bold\x02 and \x0304red\x03", "bold and red"),
        ("tabs\tand\nnew lines\r\n", "tabs and new lines"),
        ("c1 \x9b31m csi", "c1 31m csi"),
        ("x" * 300, "x" * 199 + "…"),
    ],
)
def test_text_is_cleaned_and_capped(text: str, expected: str) -> None:
    assert clean(text, 200) == expected


def test_a_semicolon_in_the_title_cannot_add_a_field() -> None:
    written: list[str] = []
    notifier(written, bell=False).alert(Alert("#a;b", "bob", "x;y"), False)
    assert written[0].startswith("\x1b]777;notify;bob in #a,b;x;y\x07")


def test_one_alert_per_room_per_five_seconds() -> None:
    written: list[str] = []
    clock = Clock()
    note = notifier(written, clock=clock)
    assert note.alert(Alert("#general", "bob", "alice 1"), False)
    clock.now += 4.9
    assert not note.alert(Alert("#general", "bob", "alice 2"), False)
    assert note.alert(Alert("#random", "bob", "alice 3"), False)  # another room: its own
    clock.now += 0.2
    assert note.alert(Alert("#GENERAL", "bob", "alice 4"), False)
    assert [w.count("\x1b]9;") for w in written] == [1, 1, 1]
    assert "alice 2" not in "".join(written)


def test_nothing_when_in_view_or_switched_off() -> None:
    written: list[str] = []
    assert not notifier(written).alert(Alert("#general", "bob", "alice"), in_view=True)
    assert not notifier(written, bell=False, desktop=False).alert(Alert("#g", "b", "a"), False)
    notifier(written, desktop=False).alert(Alert("#general", "bob", "alice"), False)
    assert written == ["\x07"]


def test_config_keys() -> None:
    settings = from_mapping(
        {"notify": False, "bell": False, "highlight_words": ["deploy", "release"]}
    )
    assert (settings.notify, settings.bell) == (False, False)
    assert settings.highlight_words == ["deploy", "release"]
    defaults = from_mapping({})
    assert defaults.notify and defaults.bell and defaults.highlight_words == []
    assert not defaults.warnings
    with pytest.raises(ConfigError, match="notify must be true or false"):
        from_mapping({"notify": "yes"})


# -- in the app -------------------------------------------------------------------


def quiet_app(**settings: object) -> tuple[ChatApp, list[str]]:
    app = offline_app()
    for key, value in settings.items():
        setattr(app.settings, key, value)
    written: list[str] = []
    app.notifier = Notifier(
        written.append, bell=app.settings.bell, desktop=app.settings.notify, tmux=False
    )
    return app, written


async def test_mention_in_another_room_rings_and_notifies() -> None:
    app, written = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        feed(app, SETUP)
        await pilot.press("alt+1")
        assert app.state.current == "#general"
        feed(app, ["@time=2024-03-05T09:00:00.000Z :bob!b@h PRIVMSG #random :alice: lunch?"])
        feed(app, ["@time=2024-03-05T09:00:01.000Z :bob!b@h PRIVMSG #random :no mention"])
        await pilot.pause()
        assert written == [
            "\x07\x1b]777;notify;bob in #random;alice: lunch?\x07\x1b]9;alice: lunch?\x07"
        ]


async def test_nothing_for_the_room_in_view_while_focused_but_something_when_blurred() -> None:
    app, written = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        feed(app, SETUP)
        await pilot.press("alt+1")
        feed(app, [":bob!b@h PRIVMSG #general :alice: you there?"])
        await pilot.pause()
        assert written == []  # looking right at it
        app.post_message(events.AppBlur())
        await pilot.pause()
        assert not app.app_focus
        feed(app, [":bob!b@h PRIVMSG #general :alice: hello?"])
        await pilot.pause()
        assert written == [
            "\x07\x1b]777;notify;bob in #general;alice: hello?\x07\x1b]9;alice: hello?\x07"
        ]
        app.post_message(events.AppFocus())
        await pilot.pause()
        app.notifier.interval = 0
        feed(app, [":bob!b@h PRIVMSG #general :alice: back?"])
        await pilot.pause()
        assert len(written) == 1


async def test_direct_message_and_highlight_word_alert_but_own_lines_do_not() -> None:
    app, written = quiet_app(bell=False, highlight_words=["deploy"])
    app.state.highlight_words = ["deploy"]
    async with app.run_test(size=SIZE) as pilot:
        feed(app, SETUP)
        await pilot.press("alt+1")
        feed(app, [":carol!c@h PRIVMSG alice :psst"])
        feed(app, [":dave!d@h PRIVMSG #random :the Deploy is done"])
        feed(app, [":alice!a@h PRIVMSG #random :alice says deploy"])  # own echo
        feed(app, [":dave!d@h PRIVMSG #random :redeployed"])  # not the word
        await pilot.pause()
        assert written == [
            "\x1b]777;notify;carol (direct message);psst\x07\x1b]9;psst\x07",
            "\x1b]777;notify;dave in #random;the Deploy is done\x07\x1b]9;the Deploy is done\x07",
        ]
        random = app.state.room("#random")
        assert random is not None and random.mentions == 1


async def test_history_never_alerts() -> None:
    app, written = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        feed(app, SETUP)
        await pilot.press("alt+1")
        app.apply_message(Message.parse(":bob!b@h PRIVMSG #random :alice: old"), history=True)
        await pilot.pause()
        assert written == []


async def test_live_mention_from_another_client(server: ServerProcess, connect) -> None:  # type: ignore[no-untyped-def]
    bob = connect("bob")
    bob.join("#general")
    app = live_app(server, rooms=("#general", "#random"))
    written: list[str] = []
    app.notifier = Notifier(written.append, tmux=False)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot, app, "#general", "#random")
        await pilot.press("alt+2")
        await wait_until(pilot, lambda: app.state.current == "#random", "in #random")
        await in_thread(bob.expect, "JOIN", pattern="alice")
        bob.send("PRIVMSG #general :alice: the build is red")
        await wait_until(pilot, lambda: written, "a notification")
        assert written == [
            "\x07\x1b]777;notify;bob in #general;alice: the build is red\x07"
            "\x1b]9;alice: the build is red\x07"
        ]
