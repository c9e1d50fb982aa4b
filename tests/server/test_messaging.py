"""PRIVMSG, NOTICE, TAGMSG: delivery, tags, echo, ordering, errors."""

from __future__ import annotations

import re

TAGS = ["message-tags", "server-time", "echo-message", "batch"]


def test_room_message_reaches_everyone_but_sender(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    c = connect("carol")
    for x in (a, b, c):
        x.join("#r")
    a.send("PRIVMSG #r :hello room")
    for x in (b, c):
        got = x.expect("PRIVMSG")
        assert got.source == "alice!~alice@127.0.0.1"
        assert got.params == ["#r", "hello room"]
    a.send("PING :after")
    a.expect("PONG")
    assert not [m for m in a.received if m.command == "PRIVMSG"]


def test_tags_msgid_time_and_echo(connect) -> None:
    a = connect("alice", caps=TAGS)
    b = connect("bob", caps=["message-tags", "server-time"])
    plain = connect("carol")
    for x in (a, b, plain):
        x.join("#r")
    a.send("@+draft/reply=abc PRIVMSG #r :tagged")
    echo = a.expect("PRIVMSG")
    got = b.expect("PRIVMSG")
    assert echo.tags["msgid"] == got.tags["msgid"]
    assert echo.tags["time"] == got.tags["time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", got.tags["time"])
    assert got.tags["+draft/reply"] == "abc"
    bare = plain.expect("PRIVMSG")
    assert bare.tags == {}


def test_direct_messages_and_away(connect) -> None:
    a = connect("alice", caps=TAGS)
    b = connect("bob")
    a.send("PRIVMSG bob :psst")
    assert b.expect("PRIVMSG").params == ["bob", "psst"]
    assert a.expect("PRIVMSG").params == ["bob", "psst"]  # echo-message
    b.send("AWAY :lunch")
    b.expect("306")
    a.send("PRIVMSG bob :there?")
    assert a.expect("301").params[-1] == "lunch"
    b.send("AWAY")
    b.expect("305")


def test_notice_gets_no_error_replies(connect) -> None:
    a = connect("alice")
    a.send("NOTICE ghost :hello")
    a.send("NOTICE #nowhere :hello")
    a.send("PING :marker")
    a.expect("PONG")
    assert not [m for m in a.received if m.command in ("401", "403")]
    b = connect("bob")
    a.send("NOTICE bob :fyi")
    assert b.expect("NOTICE").params == ["bob", "fyi"]


def test_message_errors(connect) -> None:
    a = connect("alice")
    a.send("PRIVMSG")
    a.expect("411")
    a.send("PRIVMSG bob")
    a.expect("412")
    a.send("PRIVMSG ghost :hi")
    a.expect("401")
    a.send("PRIVMSG #nowhere :hi")
    a.expect("403")
    a.send("PRIVMSG a,b,c,d,e :hi")
    a.expect("407")


def test_tagmsg_typing_goes_only_to_tag_aware_clients(connect) -> None:
    a = connect("alice", caps=TAGS)
    b = connect("bob", caps=["message-tags"])
    c = connect("carol")
    for x in (a, b, c):
        x.join("#r")
    a.send("@+typing=active TAGMSG #r")
    got = b.expect("TAGMSG")
    assert got.tags["+typing"] == "active"
    assert got.params == ["#r"]
    a.send("PRIVMSG #r :done typing")
    assert c.expect("PRIVMSG").params[-1] == "done typing"
    assert not [m for m in c.received if m.command == "TAGMSG"]


def test_bot_tag_on_messages_from_bots(connect) -> None:
    bot = connect("helper")
    bot.send("MODE helper +B")
    bot.expect("MODE")
    a = connect("alice", caps=["message-tags"])
    bot.join("#r")
    a.join("#r")
    bot.send("PRIVMSG #r :beep")
    got = a.expect("PRIVMSG")
    assert "bot" in got.tags
    a.send("WHOIS helper")
    a.expect("335")


def test_lines_are_handled_in_order_and_delivered_before_the_next(connect) -> None:
    a = connect("alice", caps=TAGS)
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    a.send("".join(f"PRIVMSG #r :msg {i}\r\n" for i in range(20)) + "PART #r\r\n")
    texts = []
    while len(texts) < 21:
        m = b.expect(lambda m: m.command in ("PRIVMSG", "PART"))
        texts.append(m.params[-1] if m.command == "PRIVMSG" else "PART")
    assert texts == [f"msg {i}" for i in range(20)] + ["PART"]


def test_long_text_is_rejected_with_417(connect) -> None:
    a = connect("alice")
    a.join("#r")
    a.send("PRIVMSG #r :" + "x" * 600)
    a.expect("417")
    a.send("PING :alive")
    a.expect("PONG")


def test_multibyte_text_roundtrip(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    a.send("PRIVMSG #r :héllo wörld ✓ 你好")
    assert b.expect("PRIVMSG").params[-1] == "héllo wörld ✓ 你好"


def test_a_read_of_mixed_lines_keeps_order_and_every_error_reply(connect) -> None:
    """Runs of PRIVMSG to one room are taken together; anything else in between still
    gets its own handling, in order, and breaks the run at the right line."""
    a = connect("alice", caps=TAGS)
    b = connect("bob", caps=TAGS)
    for x in (a, b):
        x.join("#r")
        x.join("#s")
    burst = (
        b"PRIVMSG #r :one\r\nPRIVMSG #r :two\r\n"
        b"PRIVMSG #r :bad \xff byte\r\n"  # invalid UTF-8: replaced, with a FAIL
        b"PRIVMSG #r :" + b"x" * 600 + b"\r\n"  # too long: 417, not relayed
        b"PRIVMSG #s :elsewhere\n"  # another room, LF only
        b"PRIVMSG #r :three\r\n"
        b"PRIVMSG #nowhere :lost\r\n"  # 403
        b"PRIVMSG #r :four\r\n"
    )
    a.send(burst)
    got = []
    while len(got) < 6:
        m = b.expect("PRIVMSG")
        got.append((m.params[0], m.params[1]))
    assert got == [
        ("#r", "one"),
        ("#r", "two"),
        ("#r", "bad \ufffd byte"),
        ("#s", "elsewhere"),
        ("#r", "three"),
        ("#r", "four"),
    ]
    a.send("PING :end")
    seen = [
        m.params[1] if m.command == "PRIVMSG" else m.command
        for m in a.collect_until("PONG")
        if m.command in ("PRIVMSG", "FAIL", "417", "403")
    ]
    assert seen == [
        "one", "two", "FAIL", "bad \ufffd byte", "417", "elsewhere", "three", "403", "four"
    ]  # fmt: skip


def test_messages_of_one_read_get_distinct_rising_msgids_and_all_reach_history(
    connect,
) -> None:
    a = connect("alice", caps=TAGS)
    b = connect("bob", caps=[*TAGS, "draft/chathistory"])
    a.join("#r")
    b.join("#r")
    a.send("".join(f"PRIVMSG #r :n{i}\r\n" for i in range(8)))
    msgs = [b.expect("PRIVMSG") for _ in range(8)]
    assert [m.params[1] for m in msgs] == [f"n{i}" for i in range(8)]
    ids = [m.tags["msgid"] for m in msgs]
    seqs = [int(i.rsplit("-", 1)[1], 16) for i in ids]
    assert seqs == sorted(seqs) and len(set(seqs)) == 8
    b.send("CHATHISTORY LATEST #r * 8")
    b.expect("BATCH")  # opens the chathistory batch
    history = [m for m in b.collect_until("BATCH") if m.command == "PRIVMSG"]
    assert [m.params[1] for m in history] == [f"n{i}" for i in range(8)]
    assert [m.tags["msgid"] for m in history] == ids
    assert [m.tags["time"] for m in history] == [m.tags["time"] for m in msgs]


def test_a_sender_outside_a_room_without_n_gets_its_echo(connect) -> None:
    """echo-message: the server echoes every message it accepts, also one from outside a
    room that takes them (-n). It used to go to the members only, and a labeled one was
    answered with a bare ACK; the fast path skipped the outsider's echo too."""
    a = connect("alice")
    a.join("#open")
    a.send("MODE #open -n")
    a.expect("MODE")
    b = connect("bob", caps=[*TAGS, "labeled-response"])
    b.send("@label=o1 PRIVMSG #open :from outside")
    echo = b.expect("PRIVMSG")
    assert echo.params == ["#open", "from outside"] and echo.tags.get("label") == "o1"
    assert a.expect("PRIVMSG").params == ["#open", "from outside"]
    for i in range(3):  # the same line again: the fast path's turn
        b.send(f"PRIVMSG #open :again {i}")
    assert [b.expect("PRIVMSG").params[1] for _ in range(3)] == [f"again {i}" for i in range(3)]
    assert [a.expect("PRIVMSG").params[1] for _ in range(3)] == [f"again {i}" for i in range(3)]
