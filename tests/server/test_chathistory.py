"""History: join replay, CHATHISTORY subcommands, persistence across a restart."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable

from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

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


def test_targets_lists_partners_who_are_offline(server, connect) -> None:
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
    a.send("CHATHISTORY LATEST bob * 10")
    assert [m.params[-1] for m in _batch(a)] == ["hello from bob"]


def test_direct_messages_stay_with_who_held_the_nick(server, connect) -> None:
    """Whoever takes a nick later (here after a restart, or after its holder left)
    reads none of the direct messages sent to or by the earlier holder."""
    a = connect("alice", caps=HIST)
    b = connect("bob", caps=HIST)
    b.send("PRIVMSG alice :secret for alice")
    a.expect("PRIVMSG", pattern="secret")
    a.send("QUIT :bye")
    assert a.closed()
    span = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"
    imposter = connect("alice", caps=HIST)
    imposter.send(f"CHATHISTORY TARGETS {span} 10")
    assert _batch(imposter) == []
    imposter.send("CHATHISTORY LATEST bob * 10")
    assert _batch(imposter) == []
    imposter.send("NICK alicia")  # nor by a detour through another nick
    imposter.expect("NICK")
    imposter.send("NICK alice")
    imposter.expect("NICK")
    imposter.send("CHATHISTORY LATEST bob * 10")
    assert _batch(imposter) == []
    b.send("CHATHISTORY LATEST alice * 10")  # bob still reads his side
    assert [m.params[-1] for m in _batch(b)] == ["secret for alice"]
    assert server.stop(signal.SIGTERM) == 0, "\n".join(server.log)
    server.start()
    c = RawClient(server.host, server.port)
    c.register("alice", caps=HIST)
    c.send(f"CHATHISTORY TARGETS {span} 10")
    assert _batch(c) == []
    c.send("CHATHISTORY LATEST bob * 10")
    assert _batch(c) == []
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
    """Lines sent in one write are handed over as one run and stored one row per
    message; after a restart every query, by msgid anywhere, answers message by message."""
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
        rows = db.execute("SELECT text FROM messages WHERE conversation = '#burst' ORDER BY seq")
        assert [text for (text,) in rows] == texts  # one row per message, plain text
    db.close()
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


# -- odd input: a FAIL or a batch, never a traceback ---------------------------------------

SPAN = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"

# Each line and the FAIL code it must get.
ODD_LINES = [
    ("CHATHISTORY LATEST #odd * \u00b2", "INVALID_PARAMS"),  # ²: isdigit(), but int() raises
    ("CHATHISTORY LATEST #odd * \u0663", "INVALID_PARAMS"),  # Arabic-Indic 3: int() takes it
    ("CHATHISTORY LATEST #odd * \uff15", "INVALID_PARAMS"),  # fullwidth 5
    ("CHATHISTORY LATEST #odd * 99999999999999999999", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd * " + "9" * 400, "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd * -5", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd * +5", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd * :", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd * :1 0", "INVALID_PARAMS"),
    (f"CHATHISTORY TARGETS {SPAN} ²", "INVALID_PARAMS"),
    ("CHATHISTORY :a b", "INVALID_PARAMS"),  # a subcommand with a space in it
    ("CHATHISTORY :", "INVALID_PARAMS"),  # an empty one
    ("CHATHISTORY ::x", "INVALID_PARAMS"),  # one that starts with a colon
    ("CHATHISTORY :LATEST #odd * 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp=garbage 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp= 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp=0000-01-01T00:00:00.000Z 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp=2023-02-29T00:00:00.000Z 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp=10000-01-01T00:00:00.000Z 10", "INVALID_PARAMS"),
    ("CHATHISTORY LATEST #odd timestamp=\uff12\uff10\uff12\uff14-01-01T00:00:00.000Z 10",
     "INVALID_PARAMS"),
    ("CHATHISTORY BEFORE #odd * 10", "INVALID_PARAMS"),  # a reference is required
    ("CHATHISTORY BETWEEN #odd * * 10", "INVALID_PARAMS"),
    ("CHATHISTORY BETWEEN #odd timestamp=2000-01-01T00:00:00.000Z 10", "NEED_MORE_PARAMS"),
    ("CHATHISTORY LATEST * * 10", "INVALID_TARGET"),
]


def _no_tracebacks(srv: ServerProcess) -> None:
    bad = [line for line in srv.log if "Traceback" in line or "error in" in line]
    assert not bad, "\n".join(srv.log[-40:])


def test_odd_chathistory_lines_get_a_fail_and_no_traceback(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory(flood_limit=False)
    a = RawClient(srv.host, srv.port)
    try:
        a.register("alice", caps=HIST)
        a.join("#odd")
        _say(a, "#odd", 3)
        for n, (line, code) in enumerate(ODD_LINES):
            got = a.answer(line, f"t{n}")
            fails = [m for m in got if m.command == "FAIL"]
            assert [m.params[:2] for m in fails] == [["CHATHISTORY", code]], (line, got)
            assert not [m for m in got if m.command == "BATCH"], line
        # Still answering, and nothing went wrong inside.
        a.send("CHATHISTORY LATEST #odd * 10")
        assert [m.params[-1] for m in _batch(a)] == ["m0", "m1", "m2"]
    finally:
        a.close()
    _no_tracebacks(srv)


def test_edge_references_get_a_batch_and_unknown_msgids_an_error(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """Times at the ends of the calendar, huge but readable limits and BETWEEN backwards
    are answered with a batch (empty when "no content exists to return", as the spec
    asks). A msgid that names no message of the conversation gets
    ``FAIL CHATHISTORY UNKNOWN_MSGID``: an empty batch would read as "nothing after it"."""
    srv = server_factory(flood_limit=False)
    a = RawClient(srv.host, srv.port)
    try:
        a.register("alice", caps=HIST)
        a.join("#edge")
        a.join("#elsewhere")
        ids = _say(a, "#edge", 6)
        texts = [f"m{i}" for i in range(6)]
        elsewhere = _say(a, "#elsewhere", 1)[0]
        prefix, _, number = ids[1].rpartition("-")
        past = f"{prefix}-{int(number, 16) + 10**6:x}"
        first, last = "timestamp=0001-01-01T00:00:00.000Z", "timestamp=9999-12-31T23:59:59.999Z"
        cases = [
            (f"BEFORE #edge {first} 10", []),
            (f"AFTER #edge {last} 10", []),
            (f"BEFORE #edge {last} 2", texts[-2:]),
            (f"AFTER #edge {first} 2", texts[:2]),
            (f"AROUND #edge {first} 2", texts[:2]),
            (f"BETWEEN #edge {last} {first} 2", texts[-2:]),  # backwards: nearest the start
            (f"BETWEEN #edge msgid={ids[5]} msgid={ids[0]} 2", texts[3:5]),
            ("LATEST #edge * 999999999", texts),  # capped at CHATHISTORY=, not refused
            ("LATEST #edge * 000000003", texts[-3:]),
            ("LATEST #edge * 0", []),
        ]
        for ref in ("nope", f"zz-{number}", f"{prefix}-{number.upper()}0", f"{prefix}-0{number}",
                    past, elsewhere, f"{prefix}-\u00b2"):  # fmt: skip
            cases += [
                (f"BEFORE #edge msgid={ref} 10", None),
                (f"AFTER #edge msgid={ref} 10", None),
                (f"AROUND #edge msgid={ref} 10", None),
                (f"LATEST #edge msgid={ref} 10", None),
                (f"BETWEEN #edge msgid={ref} msgid={ids[3]} 10", None),
                (f"BETWEEN #edge msgid={ids[3]} msgid={ref} 10", None),
            ]
        for n, (query, want) in enumerate(cases):
            got = a.answer("CHATHISTORY " + query, f"e{n}")
            if want is None:
                assert [(m.command, m.params[:3]) for m in got] == [
                    ("FAIL", ["CHATHISTORY", "UNKNOWN_MSGID", query.split()[0]])
                ], (query, got)
                continue
            assert [m.command for m in got if m.command in ("FAIL", "WARN")] == [], (query, got)
            assert [m.params[-1] for m in got if m.command == "PRIVMSG"] == want, query
            assert [m.command for m in got].count("BATCH") == 2, query
    finally:
        a.close()
    _no_tracebacks(srv)


def _restart_with_damaged_row(srv: ServerProcess, text: str) -> None:
    """Stop the server, break the stored row of ``text`` (its tags), start it again."""
    assert srv.stop(signal.SIGTERM) == 0
    with sqlite3.connect(srv.history_db) as db:
        db.execute("UPDATE messages SET tags = 'not json' WHERE text = ?", (text,))
    db.close()
    srv.start()


def test_a_damaged_history_row_affects_only_itself(
    server_factory: Callable[..., ServerProcess],
) -> None:
    """A row the store cannot read is left out (and logged); the rest of its room's
    history still answers, in the join replay and in CHATHISTORY."""
    srv = server_factory(flood_limit=False)
    a = RawClient(srv.host, srv.port)
    a.register("alice", caps=HIST)
    a.join("#broken")
    _say(a, "#broken", 3)
    a.close()
    _restart_with_damaged_row(srv, "m1")
    c = RawClient(srv.host, srv.port)
    try:
        c.register("carol", caps=HIST)
        got = c.join("#broken")
        assert not [m for m in got if m.command in ("400", "FAIL")]
        assert [m.params[-1] for m in _batch(c)] == ["m0", "m2"]
        got = c.answer("CHATHISTORY LATEST #broken * 10", "d")
        assert [m.params[-1] for m in got if m.command == "PRIVMSG"] == ["m0", "m2"]
    finally:
        c.close()
    srv.wait_log("history row")  # logged, for the operator
    _no_tracebacks(srv)
