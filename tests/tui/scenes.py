"""Deterministic app states for snapshot and widget tests: fixed nicks, times and rooms."""

from __future__ import annotations

from datetime import UTC

from chat_protocol import Message
from chat_protocol.client_types import ServerAddress
from chat_tui.app import ChatApp
from chat_tui.config import Settings

MAIN_SCENE = [
    ":irc.example.net 001 alice :Welcome to distchat, alice",
    ":irc.example.net 005 alice PREFIX=(ov)@+ BOT=B NETWORK=distchat :are supported",
    "@time=2024-03-04T21:00:00.000Z :alice!a@h JOIN #general",
    ":irc.example.net 332 alice #general :Talk about \x02anything\x02 — rules: https://example.org/rules",
    ":irc.example.net 353 alice = #general :@alice +bob carol dave helper",
    ":irc.example.net 366 alice #general :End of /NAMES list",
    "@time=2024-03-04T21:00:01.000Z :alice!a@h JOIN #random",
    "@time=2024-03-04T21:00:02.000Z :alice!a@h JOIN #dev",
    "@time=2024-03-04T23:58:00.000Z;msgid=m1 :bob!b@h PRIVMSG #general "
    ":good night, \x0304red\x03 and \x1ditalic\x1d and \x02bold\x02",
    "@time=2024-03-05T09:00:00.000Z;msgid=m2 :carol!c@h PRIVMSG #general :alice: morning! "
    "did you see the release notes at https://example.org/notes?v=2 — they are long enough "
    "to wrap onto a second row of the pane",
    "@time=2024-03-05T09:01:00.000Z;msgid=m3 :alice!a@h PRIVMSG #general :yes, looks good",
    "@time=2024-03-05T09:02:00.000Z;msgid=m4 :dave!d@h PRIVMSG #general :\x01ACTION waves\x01",
    "@time=2024-03-05T09:03:00.000Z;msgid=m5 :erin!e@h JOIN #general",
    "@time=2024-03-05T09:03:30.000Z;msgid=m6 :erin!e@h PART #general :brb",
    "@time=2024-03-05T09:04:00.000Z;msgid=m7;bot :helper!h@h PRIVMSG #general :Build #42 passed ✔",
    "@time=2024-03-05T09:05:00.000Z;msgid=r1 :bob!b@h PRIVMSG #random :anyone for lunch?",
    "@time=2024-03-05T09:06:00.000Z;msgid=r2 :bob!b@h PRIVMSG #random :alice: you in?",
    "@time=2024-03-05T09:07:00.000Z;msgid=d1 :carol!c@h PRIVMSG #dev :deploy at noon",
    "@time=2024-03-05T09:08:00.000Z;msgid=q1 :bob!b@h PRIVMSG alice :psst, a direct message",
]


def offline_app(nick: str = "alice") -> ChatApp:
    """An app with no connection; tests feed it IRC lines with ``feed``."""
    settings = Settings(nick=nick, servers=[ServerAddress("irc.example.net", 6667)])
    return ChatApp(settings, session=None, tz=UTC)


def feed(app: ChatApp, lines: list[str]) -> None:
    for line in lines:
        app.apply_message(Message.parse(line))


def main_scene(app: ChatApp) -> None:
    """A believable morning in #general with unread rooms and a direct message."""
    state = app.state
    state.connection.state = "connected"
    state.connection.server = "irc.example.net:6667"
    state.connection.lag = 0.012
    feed(app, MAIN_SCENE)
    app.apply_message(Message.parse(":dave!d@h AWAY :back soon"))  # away-notify
    app.apply_message(Message.parse("@+typing=active :bob!b@h TAGMSG #general"))
    app.query_one("#input").cursor_blink = False  # type: ignore[attr-defined]
