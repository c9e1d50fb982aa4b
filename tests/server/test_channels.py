"""Rooms: JOIN, PART, NAMES, LIST, TOPIC, KICK, INVITE and channel modes."""

from __future__ import annotations

import pytest

TAGS = ["message-tags", "server-time", "echo-message", "batch"]


def test_join_several_rooms_with_names_and_first_member_op(connect) -> None:
    a = connect("alice")
    a.send("JOIN #one,#two")
    for room in ("#one", "#two"):
        a.expect("JOIN", pattern=room)
        names = a.expect("353", pattern=room)
        assert names.params[-1] == "@alice"
        a.expect("366", pattern=room)


def test_join_bad_name_and_part_errors(connect) -> None:
    a = connect("alice")
    a.send("JOIN nochan")
    a.expect("476")
    a.send("PART #nowhere")
    a.expect("403")
    connect("bob").join("#there")
    a.send("PART #there")
    a.expect("442")


def test_join_zero_parts_everything(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    for room in ("#a", "#b"):
        a.join(room)
        b.join(room)
    a.send("JOIN 0")
    parted = {b.expect("PART").params[0], b.expect("PART").params[0]}
    assert parted == {"#a", "#b"}


def test_part_with_reason_is_broadcast(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    b.send("PART #r :gone fishing")
    part = a.expect("PART")
    assert part.nick == "bob" and part.params == ["#r", "gone fishing"]


def test_names_multi_prefix_and_userhost(connect) -> None:
    a = connect("alice")
    a.join("#r")
    b = connect("bob", caps=["multi-prefix", "userhost-in-names"])
    a.send("MODE #r +v alice")
    a.expect("MODE")
    names = b.join("#r")
    entry = next(m for m in names if m.command == "353").params[-1].split()
    assert "@+alice!~alice@127.0.0.1" in entry
    c = connect("carol")
    plain = next(m for m in c.join("#r") if m.command == "353").params[-1].split()
    assert "@alice" in plain


def test_list_shows_counts_and_topics(connect) -> None:
    a = connect("alice")
    a.join("#busy")
    a.send("TOPIC #busy :all things busy")
    a.expect("TOPIC")
    b = connect("bob")
    b.join("#busy")
    b.join("#quiet")
    b.send("LIST")
    rows = b.collect_until("323")
    entries = {m.params[1]: (m.params[2], m.params[3]) for m in rows if m.command == "322"}
    assert entries["#busy"] == ("2", "all things busy")
    assert entries["#quiet"] == ("1", "")
    b.send("LIST #quiet")
    rows = b.collect_until("323")
    assert [m.params[1] for m in rows if m.command == "322"] == ["#quiet"]


def test_topic_set_query_and_protected(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    b.send("TOPIC #r")
    b.expect("331")
    b.send("TOPIC #r :mine")
    b.expect("482")
    a.send("TOPIC #r :the topic")
    assert b.expect("TOPIC").params == ["#r", "the topic"]
    b.send("TOPIC #r")
    assert b.expect("332").params[-1] == "the topic"
    b.expect("333")
    a.send("MODE #r -t")
    b.expect("MODE")
    b.send("TOPIC #r :bob's now")
    a.expect("TOPIC", pattern="bob's now")


def test_kick_needs_op_and_removes(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    b.send("KICK #r alice")
    b.expect("482")
    a.send("KICK #r bob :behave")
    kick = b.expect("KICK")
    assert kick.params == ["#r", "bob", "behave"]
    b.send("PRIVMSG #r :still here?")
    b.expect("404")
    a.send("KICK #r nobody")
    a.expect("441")


def test_invite_only_room(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#club")
    a.send("MODE #club +i")
    a.expect("MODE")
    b.send("JOIN #club")
    b.expect("473")
    a.send("INVITE bob #club")
    a.expect("341")
    invite = b.expect("INVITE")
    assert invite.params == ["bob", "#club"]
    b.join("#club")
    a.send("INVITE bob #club")
    a.expect("443")
    a.send("INVITE ghost #club")
    a.expect("401")


def test_key_and_limit(connect) -> None:
    a = connect("alice")
    a.join("#vault")
    a.send("MODE #vault +kl secret 2")
    change = a.expect("MODE")
    assert change.params == ["#vault", "+kl", "secret", "2"]
    b = connect("bob")
    b.send("JOIN #vault")
    b.expect("475")
    b.send("JOIN #vault wrong")
    b.expect("475")
    b.send("JOIN #vault secret")
    b.expect("366")
    c = connect("carol")
    c.send("JOIN #vault secret")
    c.expect("471")
    a.send("MODE #vault")
    modes = a.expect("324")
    assert modes.params[2].startswith("+") and "k" in modes.params[2] and "l" in modes.params[2]


def test_moderated_room_needs_voice(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#mod")
    b.join("#mod")
    a.send("MODE #mod +m")
    b.expect("MODE")
    b.send("PRIVMSG #mod :can I talk?")
    b.expect("404")
    a.send("MODE #mod +v bob")
    b.expect("MODE", pattern=r"\+v bob")
    b.send("PRIVMSG #mod :now I can")
    a.expect("PRIVMSG", pattern="now I can")


def test_no_external_messages(connect) -> None:
    a = connect("alice")
    a.join("#inside")
    out = connect("outsider")
    out.send("PRIVMSG #inside :hi")
    out.expect("404")
    a.send("MODE #inside -n")
    a.expect("MODE")
    out.send("PRIVMSG #inside :hi now")
    a.expect("PRIVMSG", pattern="hi now")


def test_op_and_deop(connect) -> None:
    a = connect("alice")
    b = connect("bob")
    a.join("#r")
    b.join("#r")
    b.send("MODE #r +o bob")
    b.expect("482")
    a.send("MODE #r +o bob")
    assert b.expect("MODE").params == ["#r", "+o", "bob"]
    b.send("MODE #r -o alice")
    assert a.expect("MODE", pattern="-o").params == ["#r", "-o", "alice"]
    a.send("TOPIC #r :x")
    a.expect("482")


@pytest.mark.parametrize(
    ("line", "numeric"),
    [
        ("MODE #r +z", "472"),
        ("MODE #r +o", "461"),
        ("MODE #r +o ghost", "401"),
        ("MODE #r +o bob", "441"),
        ("MODE #r +l ²", "696"),
        ("MODE #r +l ٣", "696"),
        ("MODE #r +l 0", "696"),
        ("MODE #r +l notanumber", "696"),
        ("MODE #nowhere +t", "403"),
        ("MODE bob +i", "502"),
        ("MODE alice +x", "501"),
    ],
)
def test_mode_errors(connect, line: str, numeric: str) -> None:
    a = connect("alice")
    connect("bob")
    a.join("#r")
    a.send(line)
    a.expect(numeric)


def test_user_modes_invisible_and_bot(connect) -> None:
    a = connect("alice")
    a.send("MODE alice +iB")
    assert a.expect("MODE").params == ["alice", "+iB"]
    a.send("MODE alice")
    assert a.expect("221").params[-1] == "+iB"
    a.send("MODE alice -i")
    a.expect("MODE", pattern="-i")


def test_ban_list_query_is_answered(connect) -> None:
    a = connect("alice")
    a.join("#r")
    a.send("MODE #r b")
    a.expect("368")
