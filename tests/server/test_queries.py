"""WHO, WHOIS, LUSERS, MOTD, USERHOST, ISON, OPER, KILL, labeled-response."""

from __future__ import annotations


def test_who_channel_and_nick(connect) -> None:
    a = connect("alice", caps=["multi-prefix"])
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    b.send("AWAY :brb")
    b.expect("306")
    a.send("WHO #r")
    rows = a.collect_until("315")
    who = {m.params[5]: m for m in rows if m.command == "352"}
    assert who["alice"].params[6] == "H@"
    assert who["bob"].params[6] == "G"
    assert who["bob"].params[-1] == "0 bob real"
    a.send("WHO bob")
    rows = a.collect_until("315")
    assert [m.params[5] for m in rows if m.command == "352"] == ["bob"]


def test_who_nick_names_a_shared_room_and_hides_invisible_rooms(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    c = connect("carol")
    b.join("#first")
    b.join("#shared")
    a.join("#shared")
    a.send("WHO bob")
    (row,) = [m for m in a.collect_until("315") if m.command == "352"]
    assert row.params[1] == "#shared"  # not bob's first room, which alice is not in
    c.send("WHO bob")
    (row,) = [m for m in c.collect_until("315") if m.command == "352"]
    assert row.params[1] == "#first"
    b.send("MODE bob +i")
    b.expect("MODE")
    c.send("WHO bob")
    rows = [m for m in c.collect_until("315") if m.command == "352"]
    assert [m.params[1] for m in rows] == ["*"]  # found by exact nick, but no room shown


def test_whois_details_and_unknown(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    b.join("#r")
    a.send("WHOIS bob")
    rows = a.collect_until("318")
    codes = [m.command for m in rows]
    assert {"311", "319", "312", "317", "318"} <= set(codes)
    assert next(m for m in rows if m.command == "319").params[-1] == "@#r"
    a.send("WHOIS ghost")
    a.expect("401")
    a.expect("318")


def test_lusers_motd_userhost_ison(connect) -> None:
    a = connect("alice")
    connect("bob")
    a.send("LUSERS")
    assert "2 clients" in a.expect("255").params[-1]
    a.send("MOTD")
    a.expect("375")
    a.expect("376")
    a.send("USERHOST bob")
    assert a.expect("302").params[-1] == "bob=+~bob@127.0.0.1"
    a.send("ISON bob ghost")
    assert a.expect("303").params[-1] == "bob"


def test_unknown_command(connect) -> None:
    a = connect("alice")
    a.send("FROBNICATE now")
    reply = a.expect("421")
    assert reply.params[1] == "FROBNICATE"


def test_oper_and_kill(server_factory) -> None:
    from tests.support.rawclient import RawClient

    srv = server_factory("--oper", "root:hunter2")
    admin = RawClient(srv.host, srv.port)
    admin.register("admin")
    victim = RawClient(srv.host, srv.port)
    victim.register("victim")
    witness = RawClient(srv.host, srv.port)
    witness.register("witness")
    victim.join("#r")
    witness.join("#r")
    victim.send("KILL admin :no")
    victim.expect("481")
    admin.send("OPER root wrong")
    admin.expect("464")
    admin.send("OPER root hunter2")
    admin.expect("381")
    admin.send("KILL victim :spamming")
    assert victim.expect("ERROR").params[-1].endswith("(Killed (admin (spamming)))")
    quit_msg = witness.expect("QUIT")
    assert quit_msg.nick == "victim" and "Killed" in quit_msg.params[-1]
    admin.send("KILL ghost :x")
    admin.expect("401")


def test_labeled_response_single_multi_and_ack(connect) -> None:
    a = connect("alice", caps=["labeled-response", "batch", "message-tags"])
    a.send("@label=one PING :x")
    pong = a.expect("PONG")
    assert pong.tags["label"] == "one"
    a.send("@label=two WHOIS alice")
    start = a.expect("BATCH")
    assert start.tags["label"] == "two" and start.params[1] == "labeled-response"
    ref = start.params[0][1:]
    body = a.collect_until("BATCH")
    assert all(m.tags.get("batch") == ref for m in body[:-1])
    assert body[-1].params == [f"-{ref}"]
    a.send("@label=three AWAY :x")
    assert a.expect("306").tags["label"] == "three"
    a.send("@label=four PONG :nothing")
    ack = a.expect("ACK")
    assert ack.tags["label"] == "four"
