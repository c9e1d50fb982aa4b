"""History: join replay, CHATHISTORY subcommands, persistence across a restart."""

from __future__ import annotations

import signal
import sqlite3

from tests.support.rawclient import RawClient

HIST = ["message-tags", "server-time", "batch", "draft/chathistory", "echo-message"]


def _batch(client: RawClient) -> list:
    start = client.expect("BATCH", pattern=r"BATCH \+")
    ref = start.params[0][1:]
    lines = client.collect_until("BATCH")
    assert lines[-1].params[0] == f"-{ref}"
    return [m for m in lines[:-1] if m.tags.get("batch") == ref]


def _say(client: RawClient, room: str, count: int, prefix: str = "m") -> list[str]:
    ids = []
    for i in range(count):
        client.send(f"PRIVMSG {room} :{prefix}{i}")
        ids.append(client.expect("PRIVMSG").tags["msgid"])
    return ids


def test_join_replays_recent_history_in_a_batch(connect) -> None:
    a = connect("alice", caps=HIST)
    a.join("#h")
    ids = _say(a, "#h", 60)
    b = connect("bob", caps=HIST)
    b.send("JOIN #h")
    replay = _batch(b)
    assert [m.tags["msgid"] for m in replay] == ids[-50:]
    assert replay[0].params == ["#h", "m10"]
    c = connect("carol")  # no batch/server-time: no replay
    c.join("#h")
    c.send("PING :x")
    c.expect("PONG")
    assert not [m for m in c.received if m.command == "PRIVMSG"]


def test_chathistory_subcommands(connect) -> None:
    a = connect("alice", caps=HIST)
    a.join("#h")
    ids = _say(a, "#h", 20)
    a.send("CHATHISTORY LATEST #h * 5")
    assert [m.tags["msgid"] for m in _batch(a)] == ids[-5:]
    a.send(f"CHATHISTORY BEFORE #h msgid={ids[10]} 3")
    assert [m.tags["msgid"] for m in _batch(a)] == ids[7:10]
    a.send(f"CHATHISTORY AFTER #h msgid={ids[10]} 3")
    assert [m.tags["msgid"] for m in _batch(a)] == ids[11:14]
    a.send(f"CHATHISTORY AROUND #h msgid={ids[10]} 3")
    around = [m.tags["msgid"] for m in _batch(a)]
    assert ids[10] in around and len(around) == 3
    a.send(f"CHATHISTORY BETWEEN #h msgid={ids[2]} msgid={ids[6]} 10")
    assert [m.tags["msgid"] for m in _batch(a)] == ids[3:6]
    a.send(f"CHATHISTORY LATEST #h msgid={ids[17]} 10")
    assert [m.tags["msgid"] for m in _batch(a)] == ids[18:]


def test_chathistory_by_timestamp_and_errors(connect) -> None:
    a = connect("alice", caps=HIST)
    a.join("#h")
    _say(a, "#h", 5)
    a.send("CHATHISTORY AFTER #h timestamp=2000-01-01T00:00:00.000Z 3")
    assert [m.params[-1] for m in _batch(a)] == ["m0", "m1", "m2"]
    a.send("CHATHISTORY BEFORE #h timestamp=2100-01-01T00:00:00.000Z 2")
    assert [m.params[-1] for m in _batch(a)] == ["m3", "m4"]
    a.send("CHATHISTORY BOGUS #h * 10")
    a.expect("FAIL", pattern="INVALID_PARAMS")
    a.send("CHATHISTORY LATEST #h * notanumber")
    a.expect("FAIL", pattern="INVALID_PARAMS")
    a.send("CHATHISTORY BEFORE #h timestamp=yesterday 10")
    a.expect("FAIL", pattern="INVALID_PARAMS")
    outsider = connect("zed", caps=HIST)
    outsider.send("CHATHISTORY LATEST #h * 10")
    outsider.expect("FAIL", pattern="INVALID_TARGET")


def test_direct_message_history_and_targets(connect) -> None:
    a = connect("alice", caps=HIST)
    b = connect("bob", caps=HIST)
    a.send("PRIVMSG bob :secret one")
    b.expect("PRIVMSG")
    b.send("PRIVMSG alice :secret two")
    a.expect("PRIVMSG", pattern="secret two")
    a.send("CHATHISTORY LATEST bob * 10")
    assert [m.params[-1] for m in _batch(a)] == ["secret one", "secret two"]
    span = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"
    a.send(f"CHATHISTORY TARGETS {span} 10")
    targets = _batch(a)
    assert [m.params[1] for m in targets] == ["bob"]


def test_targets_lists_partners_who_are_offline_also_after_restart(server, connect) -> None:
    a = connect("alice", caps=HIST)
    b = connect("Bob", caps=HIST)
    b.send("PRIVMSG alice :hello from bob")
    a.expect("PRIVMSG", pattern="hello from bob")
    span = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"
    a.send(f"CHATHISTORY TARGETS {span} 10")
    assert [m.params[1] for m in _batch(a)] == ["Bob"]  # online: shown as they spell it
    b.send("QUIT :bye")
    assert b.closed()
    a.send(f"CHATHISTORY TARGETS {span} 10")
    assert [m.params[1] for m in _batch(a)] == ["bob"]  # offline: the casefolded nick
    assert server.stop(signal.SIGTERM) == 0
    server.start()
    c = RawClient(server.host, server.port)
    c.register("alice", caps=HIST)
    c.send(f"CHATHISTORY TARGETS {span} 10")
    assert [m.params[1] for m in _batch(c)] == ["bob"]
    c.send("CHATHISTORY LATEST bob * 10")
    assert [m.params[-1] for m in _batch(c)] == ["hello from bob"]
    c.close()


def test_history_survives_sigterm_restart(server, connect) -> None:
    a = connect("alice", caps=HIST)
    a.join("#keep")
    ids = _say(a, "#keep", 30)
    assert server.stop(signal.SIGTERM) == 0
    server.start()
    b = RawClient(server.host, server.port)
    b.register("bob", caps=HIST)
    b.send("JOIN #keep")
    assert [m.tags["msgid"] for m in _batch(b)] == ids
    b.close()


def test_bursts_of_lines_come_back_line_by_line_after_a_restart(server, connect) -> None:
    """Lines sent in one write are stored as one run (one SQLite row); after a restart
    every query, by msgid inside a run or at its edges, answers message by message."""
    a = connect("alice", caps=HIST)
    a.join("#burst")
    texts = [f"b{i}" for i in range(24)]
    for start in range(0, 24, 6):  # four writes of six lines each
        a.send("".join(f"PRIVMSG #burst :{t}\r\n" for t in texts[start : start + 6]).encode())
    echoed = [a.expect("PRIVMSG") for _ in texts]
    assert [m.params[1] for m in echoed] == texts
    ids = [m.tags["msgid"] for m in echoed]
    assert server.stop(signal.SIGTERM) == 0
    with sqlite3.connect(server.history_db) as db:
        counts = [n for (n,) in db.execute("SELECT count FROM messages WHERE target = '#burst'")]
    db.close()
    assert sum(counts) == 24 and max(counts) > 1  # runs, not a row per line
    server.start()
    b = RawClient(server.host, server.port)
    b.register("bob", caps=HIST)
    b.send("JOIN #burst")
    assert [m.params[1] for m in _batch(b)] == texts
    b.send(f"CHATHISTORY BEFORE #burst msgid={ids[9]} 4")  # from inside the second run
    assert [m.params[1] for m in _batch(b)] == texts[5:9]
    b.send(f"CHATHISTORY AFTER #burst msgid={ids[11]} 3")  # from a run's last line
    assert [m.params[1] for m in _batch(b)] == texts[12:15]
    b.send(f"CHATHISTORY AROUND #burst msgid={ids[14]} 3")
    assert [m.tags["msgid"] for m in _batch(b)] == ids[13:16]
    b.send(f"CHATHISTORY BETWEEN #burst msgid={ids[3]} msgid={ids[20]} 100")
    assert [m.params[1] for m in _batch(b)] == texts[4:20]
    b.send("CHATHISTORY LATEST #burst * 7")
    assert [m.tags["msgid"] for m in _batch(b)] == ids[-7:]
    b.close()
