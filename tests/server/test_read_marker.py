"""draft/read-marker (MARKREAD) against a real server: set and get, only forward, the
marker after a JOIN, across a restart, per nick *and* user@host, odd input answered
with a FAIL and never a traceback, 421 without the capability, labels kept. The bound
on markers per owner is checked on the worker itself (else a thousand round trips)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_protocol.servertime import format_ms, parse_ms
from chat_server.history.worker import MAX_READ_MARKERS, Worker
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

CAPS = ["message-tags", "labeled-response", "draft/read-marker"]
T1 = "2024-03-05T09:05:30.000Z"
T2 = "2024-03-05T09:06:00.000Z"
T3 = "2024-03-05T10:00:00.123Z"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, flood_limit=False) as server:
        yield server
    bad = [line for line in server.log if "Traceback" in line or "error handling" in line]
    assert not bad, "\n".join(server.log[-40:])


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    """``client("alice")`` registers alice (ident ``~alice``) from 127.0.0.1; ``source``
    connects from another loopback address (another host to the server), ``ident``
    gives another user name."""
    clients: list[RawClient] = []

    def make(
        nick: str, caps: list[str] | None = None, source: str | None = None,
        ident: str | None = None,
    ) -> RawClient:  # fmt: skip
        c = RawClient(srv.host, srv.port)
        clients.append(c)
        if source is not None:  # RawClient connects at once: connect again from source
            c.sock.close()
            c.sock = socket.create_connection(
                (srv.host, srv.port), timeout=c.timeout, source_address=(source, 0)
            )
        caps = CAPS if caps is None else caps
        if ident is None:
            c.register(nick, caps=caps)
            return c
        c.send("CAP LS 302")
        c.send("CAP REQ :" + " ".join(caps))
        c.send(f"NICK {nick}")
        c.send(f"USER {ident} 0 * :{nick} real")
        c.expect("CAP", pattern=" ACK ")
        c.send("CAP END")
        c.expect(lambda m: m.command in ("376", "422"))
        c.nick = nick
        return c

    yield make
    for c in clients:
        c.close()


def marker(c: RawClient, *params: str) -> list[str]:
    """The one MARKREAD the server answers ``MARKREAD <params>`` with: its params."""
    lines = c.answer(" ".join(["MARKREAD", *params]))
    assert [m.command for m in lines] == ["MARKREAD"], [str(m) for m in lines]
    return lines[0].params


def joined(c: RawClient, room: str) -> list[str]:
    """JOIN ``room``; the params of the MARKREAD among its replies (after the JOIN line,
    before the end of NAMES, as the spec wants)."""
    got = [m.command for m in c.join(room)]  # up to and with 366
    assert got.index("JOIN") < got.index("MARKREAD") < got.index("366"), got
    return next(m for m in c.received[::-1] if m.command == "MARKREAD").params


def gone(c: RawClient) -> None:
    c.send("QUIT :bye")
    assert c.closed()


def test_set_and_get(client: Callable[..., RawClient]) -> None:
    a = client("alice")
    assert joined(a, "#Room") == ["#Room", "*"]
    assert marker(a, "#room") == ["#Room", "*"]
    assert marker(a, "#ROOM", f"timestamp={T1}") == ["#Room", f"timestamp={T1}"]
    assert marker(a, "#room") == ["#Room", f"timestamp={T1}"]
    # A nick (direct messages), online or not, has a marker of its own.
    assert marker(a, "Bob") == ["Bob", "*"]
    assert marker(a, "Bob", f"timestamp={T3}") == ["Bob", f"timestamp={T3}"]
    assert marker(a, "bob") == ["bob", f"timestamp={T3}"]
    assert marker(a, "#room") == ["#Room", f"timestamp={T1}"]


def test_a_marker_only_moves_forward(client: Callable[..., RawClient]) -> None:
    a = client("alice")
    joined(a, "#r")
    assert marker(a, "#r", f"timestamp={T2}") == ["#r", f"timestamp={T2}"]
    assert marker(a, "#r", f"timestamp={T1}") == ["#r", f"timestamp={T2}"]  # older: kept
    assert marker(a, "#r", f"timestamp={T2}") == ["#r", f"timestamp={T2}"]
    assert marker(a, "#r", f"timestamp={T3}") == ["#r", f"timestamp={T3}"]
    assert marker(a, "#r") == ["#r", f"timestamp={T3}"]


def test_join_sends_the_marker_before_the_names_end(client: Callable[..., RawClient]) -> None:
    a = client("alice", caps=[*CAPS, "batch", "server-time"])
    a.send("JOIN #a,#b")
    a.expect("366", pattern="#b")
    seen = [(m.command, m.params[0] if m.command in ("JOIN", "MARKREAD") else m.param(1))
            for m in a.received if m.command in ("JOIN", "MARKREAD", "366")]  # fmt: skip
    assert seen == [("JOIN", "#a"), ("MARKREAD", "#a"), ("366", "#a"),
                    ("JOIN", "#b"), ("MARKREAD", "#b"), ("366", "#b")]  # fmt: skip
    marks = [m for m in a.received if m.command == "MARKREAD"]
    assert [m.params for m in marks] == [["#a", "*"], ["#b", "*"]]
    assert marker(a, "#a", f"timestamp={T1}") == ["#a", f"timestamp={T1}"]
    a.send("PART #a")
    a.expect("PART")
    assert joined(a, "#a") == ["#a", f"timestamp={T1}"]
    # Without the capability a JOIN brings no MARKREAD: a history query asked after the
    # JOIN is answered after any marker would have been.
    b = client("bob", caps=["message-tags", "batch", "draft/chathistory"])
    b.join("#a")
    b.answer("CHATHISTORY LATEST #a * 1")
    assert not [m for m in b.received if m.command == "MARKREAD"]


def test_markers_survive_a_restart(srv: ServerProcess, client: Callable[..., RawClient]) -> None:
    a = client("alice")
    joined(a, "#keep")
    marker(a, "#keep", f"timestamp={T1}")
    marker(a, "bob", f"timestamp={T2}")
    gone(a)
    assert srv.stop(signal.SIGTERM) == 0, "\n".join(srv.log)
    srv.start()
    b = client("alice")
    # #keep is cold now: its JOIN waits for the room to load, the marker follows it.
    assert joined(b, "#keep") == ["#keep", f"timestamp={T1}"]
    assert marker(b, "bob") == ["bob", f"timestamp={T2}"]
    db = sqlite3.connect(srv.history_db)
    try:
        rows = set(db.execute("SELECT owner, target, time_ms FROM read_markers"))
    finally:
        db.close()
    assert rows == {("alice ~alice@127.0.0.1", "#keep", parse_ms(T1)),
                    ("alice ~alice@127.0.0.1", "bob", parse_ms(T2))}  # fmt: skip


@pytest.mark.parametrize(
    ("source", "ident"), [("127.0.0.2", None), (None, "other")], ids=["host", "ident"]
)
def test_someone_else_taking_the_nick_sees_none(
    client: Callable[..., RawClient], source: str | None, ident: str | None
) -> None:
    a = client("alice")
    joined(a, "#r")
    marker(a, "#r", f"timestamp={T2}")
    marker(a, "bob", f"timestamp={T2}")
    gone(a)
    other = client("alice", source=source, ident=ident)
    assert joined(other, "#r") == ["#r", "*"]
    assert marker(other, "bob") == ["bob", "*"]
    assert marker(other, "#r", f"timestamp={T1}") == ["#r", f"timestamp={T1}"]  # its own
    gone(other)
    back = client("alice")
    assert joined(back, "#r") == ["#r", f"timestamp={T2}"]  # not moved by the other
    assert marker(back, "bob") == ["bob", f"timestamp={T2}"]


def test_odd_markread_lines_get_a_fail(client: Callable[..., RawClient]) -> None:
    a = client("alice")
    joined(a, "#r")
    ahead = format_ms(int(time.time() * 1000) + 86_400_000)
    cases = [
        ("MARKREAD", "NEED_MORE_PARAMS"),
        ("MARKREAD :", "NEED_MORE_PARAMS"),
        ("MARKREAD #elsewhere", "INVALID_PARAMS"),  # not a member
        ("MARKREAD #elsewhere timestamp=" + T1, "INVALID_PARAMS"),
        ("MARKREAD a*b", "INVALID_PARAMS"),
        ("MARKREAD :two words", "INVALID_PARAMS"),
        ("MARKREAD 9lives", "INVALID_PARAMS"),
        ("MARKREAD #r *", "INVALID_PARAMS"),  # a client may not set "unknown"
        ("MARKREAD #r " + T1, "INVALID_PARAMS"),  # no timestamp=
        ("MARKREAD #r timestamp=", "INVALID_PARAMS"),
        ("MARKREAD #r timestamp=garbage", "INVALID_PARAMS"),
        ("MARKREAD #r timestamp=٢٠٢٤-03-05T09:05:30.000Z", "INVALID_PARAMS"),  # not ASCII
        ("MARKREAD #r timestamp=2024-02-30T00:00:00.000Z", "INVALID_PARAMS"),  # no such day
        ("MARKREAD #r :timestamp=2024-03-05 09:05:30.000Z", "INVALID_PARAMS"),
        ("MARKREAD #r timestamp=" + ahead, "INVALID_PARAMS"),  # a day ahead: refused
    ]
    for line, code in cases:
        got = a.answer(line)
        assert [m.params[:2] for m in got] == [["MARKREAD", code]], (line, [str(m) for m in got])
        assert got[0].command == "FAIL"
    assert marker(a, "#r") == ["#r", "*"]  # none of them was stored


def test_a_time_just_ahead_is_taken_as_now(client: Callable[..., RawClient]) -> None:
    """Up to a minute ahead of the server's clock is a fast clock: the marker is the
    server's now, so messages sent after it stay unread."""
    a = client("alice")
    joined(a, "#r")
    before = int(time.time() * 1000)
    got = marker(a, "#r", f"timestamp={format_ms(before + 20_000)}")
    after = int(time.time() * 1000)
    assert got[0] == "#r" and got[1].startswith("timestamp=")
    assert before <= parse_ms(got[1].removeprefix("timestamp=")) <= after


def test_without_the_capability_markread_is_unknown(client: Callable[..., RawClient]) -> None:
    c = client("carol", caps=["message-tags"])
    c.join("#r")
    got = c.answer(f"MARKREAD #r timestamp={T1}")
    assert [(m.command, m.params[:2]) for m in got] == [("421", ["carol", "MARKREAD"])]


def test_a_labeled_markread_carries_its_label(client: Callable[..., RawClient]) -> None:
    a = client("alice")
    joined(a, "#r")
    got = a.answer(f"@label=set1 MARKREAD #r timestamp={T1}")
    assert [(m.command, m.tags.get("label"), m.params) for m in got] == [
        ("MARKREAD", "set1", ["#r", f"timestamp={T1}"])
    ]
    got = a.answer("@label=get2 MARKREAD #r")
    assert [(m.command, m.tags.get("label")) for m in got] == [("MARKREAD", "get2")]
    got = a.answer("@label=bad3 MARKREAD #r timestamp=nope")
    assert [(m.command, m.tags.get("label")) for m in got] == [("FAIL", "bad3")]


def test_an_owner_keeps_a_bounded_number_of_markers(tmp_path: Path) -> None:
    """Past MAX_READ_MARKERS the oldest times go, never the marker just set, and only
    that owner's."""
    path = tmp_path / "history.db"
    worker = Worker({"path": str(path)})
    t0 = parse_ms(T1)
    owner = "alice ~alice@192.0.2.7"
    for i in range(MAX_READ_MARKERS + 5):
        worker.save_marker(owner, f"nick{i}", t0 + i)
    worker.save_marker("bob ~bob@192.0.2.8", "nick0", t0)
    worker.save_marker(owner, "oldest", t0 - 1)  # the oldest time, but just set
    worker.save_marker(owner, "nick6", t0 - 5)  # older than stored: kept as it was
    worker.commit()
    worker.answer(1, "markers", (owner, ["oldest", "nick5", "nick6", "nick6"]))
    assert worker.out[-1] == ("answer", 1, True, [("oldest", t0 - 1), ("nick6", t0 + 6)])
    worker.db.close()
    db = sqlite3.connect(path)
    try:
        counts = dict(db.execute("SELECT owner, count(*) FROM read_markers GROUP BY owner"))
        kept = {t for (t,) in db.execute("SELECT target FROM read_markers WHERE owner = ?",
                                          (owner,))}  # fmt: skip
    finally:
        db.close()
    assert counts == {owner: MAX_READ_MARKERS, "bob ~bob@192.0.2.8": 1}
    assert {f"nick{i}" for i in range(6)}.isdisjoint(kept) and "nick6" in kept
