"""Drive the server with a published IRC client library (jaraco's ``irc``), not our code."""

from __future__ import annotations

import time

import irc.client

from tests.support.rawclient import RawClient


def test_irc_library_client_joins_talks_and_hears(server) -> None:
    reactor = irc.client.Reactor()
    events: list[tuple[str, str, list[str]]] = []

    def record(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        events.append((event.type, str(event.source), list(event.arguments)))

    for kind in ("welcome", "join", "pubmsg", "privmsg", "namreply", "topic", "currenttopic"):
        reactor.add_global_handler(kind, record)
    conn = reactor.server().connect(server.host, server.port, "libuser", username="lib")

    def pump_until(pred, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            assert time.monotonic() < deadline, f"timed out; events: {events[-10:]}"
            reactor.process_once(0.05)

    pump_until(lambda: any(e[0] == "welcome" for e in events))
    conn.join("#lib")
    pump_until(lambda: any(e[0] == "join" for e in events))
    pump_until(lambda: any(e[0] == "namreply" for e in events))
    raw = RawClient(server.host, server.port)
    raw.register("rawuser")
    raw.join("#lib")
    conn.privmsg("#lib", "hello from the library")
    got = raw.expect("PRIVMSG")
    assert got.nick == "libuser" and got.params == ["#lib", "hello from the library"]
    raw.send("PRIVMSG #lib :hello back")
    raw.send("PRIVMSG libuser :direct")
    pump_until(lambda: any(e[0] == "pubmsg" and e[2] == ["hello back"] for e in events))
    pump_until(lambda: any(e[0] == "privmsg" and e[2] == ["direct"] for e in events))
    conn.topic("#lib", "set by a library")
    assert raw.expect("TOPIC").params == ["#lib", "set by a library"]
    conn.quit("bye")
    assert raw.expect("QUIT").params == ["Quit: bye"]
    raw.close()
    conn.close()
