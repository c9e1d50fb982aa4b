"""Presence against a real server: MONITOR, away-notify and setname (IRCv3).

Every wait is an expected reply or a PING/PONG barrier, never a sleep: a client that
must not have received something proves it with a barrier after the event.
"""

from __future__ import annotations

from collections.abc import Callable

from chat_protocol import Message
from chat_server.model import User
from chat_server.monitor import MonitorIndex
from tests.support.rawclient import RawClient

Connect = Callable[..., RawClient]


def _quiet(client: RawClient, token: str = "quiet") -> None:
    """Nothing but the PONG arrives before a barrier: what happened earlier sent it nothing."""
    client.send(f"PING :{token}")
    got = client.collect_until("PONG")
    assert got[-1].params[-1] == token
    assert [str(m) for m in got[:-1]] == []


def _settle(*clients: RawClient) -> None:
    """Read everything sent so far (others' JOINs) up to a barrier, and drop it."""
    for client in clients:
        client.send("PING :settle")
        client.collect_until("PONG")


def _status(client: RawClient, line: str) -> tuple[list[str], list[str]]:
    """Send a MONITOR line; the targets reported online (730) and offline (731)."""
    got = client.answer(line)
    online = [t for m in got if m.command == "730" for t in m.params[-1].split(",")]
    offline = [t for m in got if m.command == "731" for t in m.params[-1].split(",")]
    return online, offline


def _listed(client: RawClient) -> list[str]:
    client.send("MONITOR L")
    got = client.collect_until("733")
    assert got[-1].params[-1] == "End of MONITOR list"
    return [t for m in got if m.command == "732" for t in m.params[-1].split(",")]


def _fits(messages: list[Message]) -> None:
    for msg in messages:
        assert len(str(msg).encode()) + 2 <= 512, str(msg)


# -- advertising ---------------------------------------------------------------------------


def test_isupport_and_cap_ls_advertise_presence(connect: Connect) -> None:
    c = connect()
    c.send("CAP LS 302")
    offered = c.expect("CAP", pattern=" LS ").params[-1].split()
    assert {"away-notify", "setname"} <= set(offered)
    c.send("CAP END")
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice")
    burst = c.collect_until("376")
    isupport = [t for m in burst if m.command == "005" for t in m.params[1:-1]]
    assert "MONITOR=100" in isupport
    assert "NAMELEN=100" in isupport


# -- MONITOR -------------------------------------------------------------------------------


def test_monitor_reports_status_then_registration_nick_change_and_quit(
    connect: Connect,
) -> None:
    watcher = connect("alice")
    connect("bob")
    online, offline = _status(watcher, "MONITOR + bob,Carol")
    assert online == ["bob!~bob@127.0.0.1"]
    assert offline == ["Carol"]
    carol = connect("carol")
    assert watcher.expect("730").params == ["alice", "carol!~carol@127.0.0.1"]
    carol.send("NICK dave")
    carol.expect("NICK")
    assert watcher.expect("731").params == ["alice", "carol"]  # dave is not watched
    _quiet(watcher)
    _status(watcher, "MONITOR + dave")
    carol.send("NICK Carol")
    assert watcher.expect("731").params[-1] == "dave"
    assert watcher.expect("730").params[-1] == "Carol!~carol@127.0.0.1"
    carol.send("QUIT :bye")
    assert watcher.expect("731").params[-1] == "Carol"


def test_monitor_a_dropped_user_goes_offline(connect: Connect) -> None:
    watcher = connect("alice")
    bob = connect("bob")
    _status(watcher, "MONITOR + bob")
    bob.close()  # no QUIT: the server notices the closed socket
    assert watcher.expect("731").params[-1] == "bob"


def test_monitor_casefolds_and_keeps_the_spelling_given(connect: Connect) -> None:
    watcher = connect("alice")
    online, offline = _status(watcher, "MONITOR + BOB,bob,Bob,[x]")
    assert (online, offline) == ([], ["BOB", "[x]"])  # one entry for the three spellings
    assert _listed(watcher) == ["BOB", "[x]"]
    connect("bob")
    assert watcher.expect("730").params[-1] == "bob!~bob@127.0.0.1"
    connect("[X]")
    assert watcher.expect("730").params[-1] == "[X]!~X@127.0.0.1"


def test_monitor_remove_clear_list_and_status(connect: Connect) -> None:
    watcher = connect("alice")
    connect("bob")
    _status(watcher, "MONITOR + bob,carol,dave")
    assert watcher.answer("MONITOR - CAROL,nobody,,") == []  # no output, unknowns ignored
    assert _listed(watcher) == ["bob", "dave"]
    online, offline = _status(watcher, "MONITOR S")
    assert (online, offline) == (["bob!~bob@127.0.0.1"], ["dave"])
    assert watcher.answer("MONITOR C") == []
    assert _listed(watcher) == []
    assert _status(watcher, "MONITOR S") == ([], [])
    connect("dave")  # no longer watched: nothing arrives
    _quiet(watcher)


def test_monitor_bad_input_gets_clear_errors(connect: Connect) -> None:
    watcher = connect("alice")
    assert watcher.answer("MONITOR")[0].command == "461"
    assert watcher.answer("MONITOR +")[0].command == "461"
    (fail,) = watcher.answer("MONITOR X a,b")
    assert fail.command == "FAIL"
    assert fail.params[:3] == ["MONITOR", "INVALID_PARAMS", "X"]
    got = watcher.answer("MONITOR + :9lives,#room,ok,a b,x!y@z," + "n" * 40)
    fails = [m for m in got if m.command == "FAIL"]
    assert len(fails) == 1  # one FAIL however many targets are bad
    assert fails[0].params[:2] == ["MONITOR", "INVALID_TARGET"]
    assert "5 target(s)" in fails[0].params[-1]
    assert [m.params[-1] for m in got if m.command == "731"] == ["ok"]
    assert _listed(watcher) == ["ok"]
    unregistered = connect()
    unregistered.send("MONITOR + alice")
    unregistered.expect("451")


def test_monitor_list_is_bounded_by_the_setting(server_factory) -> None:
    srv = server_factory("--monitor-max", "3")
    watcher = RawClient(srv.host, srv.port)
    try:
        welcome = watcher.register("alice")
        assert welcome.command == "001"
        got = watcher.answer("MONITOR + a1,a2,a3,a4,a5")
        (full,) = [m for m in got if m.command == "734"]
        assert full.params[1:] == ["3", "a4,a5", "Monitor list is full."]
        assert [m.params[-1] for m in got if m.command == "731"] == ["a1,a2,a3"]
        got = watcher.answer("MONITOR + a1,a6")  # a1 is there already: status, no error
        assert [m.params[2] for m in got if m.command == "734"] == ["a6"]
        assert [m.params[-1] for m in got if m.command == "731"] == ["a1"]
        watcher.answer("MONITOR - a2")
        watcher.answer("MONITOR + a6")
        assert _listed(watcher) == ["a1", "a3", "a6"]
    finally:
        watcher.close()


def test_monitor_of_1000_targets_keeps_100_and_the_connection(connect: Connect) -> None:
    watcher = connect("alice")
    friend = connect("bob")
    targets = [f"n{i:04d}" for i in range(1000)]
    replies: list[Message] = []
    for start in range(0, 1000, 60):  # 60 x 6 bytes: 734 can name all it refused
        replies += watcher.answer("MONITOR + " + ",".join(targets[start : start + 60]))
    full = [m for m in replies if m.command == "734"]
    assert full and all(m.params[1] == "100" for m in full)
    refused = [t for m in full for t in m.params[2].split(",")]
    assert refused == targets[100:]
    _fits(replies)
    listed = _listed(watcher)
    assert listed == targets[:100]
    online, offline = _status(watcher, "MONITOR S")
    assert (online, offline) == ([], targets[:100])
    _fits(watcher.received)
    friend.send("PRIVMSG alice :still here")
    assert watcher.expect("PRIVMSG").params[-1] == "still here"


def test_monitor_line_of_100kb_is_refused_and_harmless(connect: Connect) -> None:
    watcher = connect("alice")
    watcher.sock.sendall(b"MONITOR + " + b"a," * 50_000 + b"\r\n")
    watcher.expect("417")
    assert _listed(watcher) == []
    many = ",".join(f"x{i}" for i in range(110))  # a line of 459 bytes: 110 targets
    got = watcher.answer("MONITOR + " + many)
    _fits(got)
    assert len([m for m in got if m.command == "734"]) == 1
    assert len(_listed(watcher)) == 100


def test_a_watcher_that_disconnects_is_forgotten(connect: Connect) -> None:
    gone = connect("alice")
    stays = connect("carol")
    _status(gone, "MONITOR + bob")
    _status(stays, "MONITOR + bob,alice")
    gone.close()
    assert stays.expect("731").params[-1] == "alice"  # the server has seen alice go
    connect("bob")
    assert stays.expect("730").params[-1] == "bob!~bob@127.0.0.1"
    again = connect("alice")  # the nick is free, and the new alice watches nothing
    assert _listed(again) == []


def test_monitor_index_forgets_both_ways() -> None:
    index = MonitorIndex()
    one, two = User(None, "h"), User(None, "h")
    index.add(one, "bob", "Bob")
    index.add(one, "carol", "carol")
    index.add(two, "bob", "bob")
    assert set(index.watchers("bob")) == {one, two}
    assert index.sizes() == (2, 2)
    index.remove(one, "carol")
    index.remove(one, "nobody")
    assert index.sizes() == (2, 1)
    index.clear(two)
    assert index.watchers("bob") == [one]
    index.remove(one, "bob")
    assert index.sizes() == (0, 0)
    assert index.targets(one) == {}


def test_labeled_monitor_status_is_one_response(connect: Connect) -> None:
    watcher = connect("alice", caps=["labeled-response", "batch"])
    connect("bob")
    got = watcher.answer("@label=m1 MONITOR + bob,ghost")
    assert got[0].command == "BATCH" and got[0].tags.get("label") == "m1"
    assert [m.command for m in got[1:-1]] == ["730", "731"]


# -- away-notify ---------------------------------------------------------------------------


def test_away_notify_tells_room_peers_with_the_cap(connect: Connect) -> None:
    alice = connect("alice", caps=["away-notify"])
    bob = connect("bob")
    carol = connect("carol")
    outsider = connect("dave", caps=["away-notify"])
    for c in (alice, bob, carol):
        c.join("#r")
    _settle(alice, bob, carol)
    carol.send("AWAY :lunch")
    carol.expect("306")
    got = alice.expect("AWAY")
    assert (got.source, got.params) == ("carol!~carol@127.0.0.1", ["lunch"])
    carol.send("AWAY :still lunch")
    assert alice.expect("AWAY").params == ["still lunch"]
    carol.send("AWAY")
    carol.expect("305")
    assert alice.expect("AWAY").params == []
    carol.answer("AWAY")  # not away already: no change, nothing sent
    _quiet(alice)
    _quiet(bob)  # no away-notify
    _quiet(outsider)  # shares no room
    _quiet(carol)  # its own change comes as 305/306


def test_away_notify_after_an_away_users_join(connect: Connect) -> None:
    alice = connect("alice", caps=["away-notify"])
    bob = connect("bob")
    alice.join("#r")
    bob.join("#r")
    _settle(alice)
    carol = connect("carol", caps=["away-notify"])
    carol.answer("AWAY :gone fishing")
    carol.join("#r")
    assert alice.expect(lambda m: True).source == "carol!~carol@127.0.0.1"  # its JOIN
    away = alice.expect(lambda m: True)  # the very next line
    assert (away.source, away.command, away.params) == (
        "carol!~carol@127.0.0.1",
        "AWAY",
        ["gone fishing"],
    )
    bob.expect("JOIN")
    _quiet(bob)
    _quiet(carol)


# -- setname -------------------------------------------------------------------------------


def test_setname_goes_to_the_sender_and_peers_with_the_cap(connect: Connect) -> None:
    alice = connect("alice", caps=["setname"])
    bob = connect("bob", caps=["setname"])
    dave = connect("dave")
    for c in (alice, bob, dave):
        c.join("#r")
    _settle(alice, bob, dave)
    alice.send("SETNAME :Alice Liddell <alice@example.org>")
    mine = alice.expect("SETNAME")
    assert (mine.source, mine.params) == (
        "alice!~alice@127.0.0.1",
        ["Alice Liddell <alice@example.org>"],
    )
    assert bob.expect("SETNAME").params == ["Alice Liddell <alice@example.org>"]
    _quiet(dave)
    dave.send("WHOIS alice")
    assert dave.expect("311").params[-1] == "Alice Liddell <alice@example.org>"


def test_setname_refuses_bad_realnames_and_clients_without_the_cap(connect: Connect) -> None:
    alice = connect("alice", caps=["setname"])
    plain = connect("bob")
    for bad in ("SETNAME :", "SETNAME :   ", "SETNAME :" + "é" * 51):  # 102 bytes
        (fail,) = alice.answer(bad)
        assert fail.command == "FAIL"
        assert fail.params[:2] == ["SETNAME", "INVALID_REALNAME"]
    assert alice.answer("SETNAME")[0].command == "461"
    assert alice.answer("SETNAME :" + "é" * 50)[0].command == "SETNAME"  # 100 bytes
    (fail,) = plain.answer("SETNAME :New")
    assert fail.params[:2] == ["SETNAME", "CANNOT_CHANGE_REALNAME"]
    plain.send("WHOIS bob")
    assert plain.expect("311").params[-1] == "bob real"
