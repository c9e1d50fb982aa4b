"""Behaviour the Modern IRC document and irctest ask for, against a real server.

USER with an empty realname, LIST filters (ELIST=MNU), secret rooms, WHO and invisible
users, MODE +o on unknown nicks, INFO, LUSERS, WHOWAS, bans (+b), Unicode digits, and
OPER guessing slowed down per address.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chat_protocol import Message
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

Connect = Callable[..., RawClient]


def _numerics(messages: list[Message]) -> list[str]:
    return [m.command for m in messages]


def _sync(client: RawClient, token: str = "sync") -> list[Message]:
    """Everything the server sent before it answers a PING."""
    client.send(f"PING :{token}")
    return client.collect_until("PONG")


def _no_handler_failures(server: ServerProcess) -> None:
    assert not [line for line in server.log if "failed" in line or "Traceback" in line]


# -- registration ----------------------------------------------------------------------


@pytest.mark.parametrize("line", ["USER u 0 * :", "USER u 0 * ", "USER :u 0 * Real"])
def test_user_with_empty_realname_or_missing_params_needs_more_params(
    connect: Connect, line: str
) -> None:
    c = connect()
    c.send("NICK foo")
    c.send(line)
    reply = c.expect(lambda m: m.command in ("461", "001"))
    assert reply.command == "461" and reply.params[1] == "USER"
    c.send("USER u 0 * :Real Name")
    c.expect("001")


# -- LIST --------------------------------------------------------------------------


def _listed(client: RawClient, line: str) -> set[str]:
    client.send(line)
    return {m.params[1] for m in client.collect_until("323") if m.command == "322"}


def test_list_filters_by_member_count_and_masks(connect: Connect) -> None:
    foo = connect("foo")
    foo.join("#chan1")
    foo.join("#chan2")
    connect("bar").join("#chan2")
    baz = connect("baz")
    assert _listed(baz, "LIST >0") == {"#chan1", "#chan2"}
    assert _listed(baz, "LIST >1") == {"#chan2"}
    assert _listed(baz, "LIST <1") == set()
    assert _listed(baz, "LIST <2") == {"#chan1"}
    assert _listed(baz, "LIST <100") == {"#chan1", "#chan2"}
    assert _listed(baz, "LIST >0,<2") == {"#chan1"}
    assert _listed(baz, "LIST *an1") == {"#chan1"}
    assert _listed(baz, "LIST #c*n2") == {"#chan2"}
    assert _listed(baz, "LIST #CH*") == {"#chan1", "#chan2"}
    assert _listed(baz, "LIST !*an1") == {"#chan2"}
    assert _listed(baz, "LIST #chan2,#nowhere") == {"#chan2"}


@pytest.mark.parametrize("arg", [">²", "<²", ">٣", "<", ">", ">-1", ">1x"])
def test_list_with_a_count_that_is_not_ascii_digits_is_ignored(
    server: ServerProcess, connect: Connect, arg: str
) -> None:
    a = connect("alice")
    a.join("#room")
    a.send(f"LIST {arg}")
    rows = a.collect_until("323")
    assert "400" not in _numerics(rows)
    assert [m.params[1] for m in rows if m.command == "322"] == ["#room"]
    _no_handler_failures(server)


# -- secret rooms --------------------------------------------------------------------


def test_names_shows_the_room_type_and_secret_rooms_are_hidden(connect: Connect) -> None:
    a = connect("alice")
    a.join("#public")
    names = next(m for m in a.join("#hidden") if m.command == "353")
    assert names.params[1] == "="
    a.send("MODE #hidden +s")
    a.expect("MODE", pattern=r"\+s")
    a.send("NAMES #hidden")
    secret = a.expect("353")
    assert secret.params[1:] == ["@", "#hidden", "@alice"]
    a.send("NAMES #public")
    assert a.expect("353").params[1] == "="

    b = connect("bob")
    assert _listed(b, "LIST") == {"#public"}
    b.send("NAMES #hidden")
    assert _numerics(b.collect_until("366")) == ["366"]
    b.send("WHO #hidden")
    assert _numerics(b.collect_until("315")) == ["315"]
    b.send("WHOIS alice")
    whois = b.collect_until("318")
    assert next(m for m in whois if m.command == "319").params[-1] == "@#public"
    b.send("WHO alice")
    (row,) = [m for m in b.collect_until("315") if m.command == "352"]
    assert row.params[1] == "#public"  # never the secret room

    names = next(m for m in b.join("#hidden") if m.command == "353")
    assert names.params[1] == "@" and names.params[-1].split() == ["@alice", "bob"]
    assert _listed(b, "LIST") == {"#public", "#hidden"}


# -- WHO -----------------------------------------------------------------------------


def test_who_shows_an_invisible_user_to_someone_sharing_a_room(connect: Connect) -> None:
    evan = connect("evan")
    evan.send("MODE evan +i")
    evan.expect("MODE")
    shiv = connect("shivaram")
    shiv.send("WHO eva*")
    assert _numerics(shiv.collect_until("315")) == ["315"]
    shiv.send("WHO evan")  # a plain nick finds anyone
    assert _numerics(shiv.collect_until("315")) == ["352", "315"]
    evan.join("#test")
    shiv.join("#test")
    shiv.send("WHO eva*")
    rows = shiv.collect_until("315")
    assert _numerics(rows) == ["352", "315"]
    assert rows[0].params[1] == "#test" and rows[0].params[5] == "evan"
    shiv.send("WHO EVAN")
    rows = shiv.collect_until("315")
    assert rows[0].params[1] == "#test" and rows[-1].params[1] == "EVAN"


def test_who_by_mask_matches_nick_or_full_source(connect: Connect) -> None:
    a = connect("alice")
    connect("coolNick")
    a.send("WHO coolni*")
    rows = a.collect_until("315")
    assert [m.params[5] for m in rows if m.command == "352"] == ["coolNick"]
    a.send("WHO *!~coolnick@127.*")
    rows = a.collect_until("315")
    assert [m.params[5] for m in rows if m.command == "352"] == ["coolNick"]
    a.send("WHO [a]*")  # brackets are nick characters, not a character class
    assert _numerics(a.collect_until("315")) == ["315"]
    a.send("WHO idontexist")
    assert _numerics(a.collect_until("315")) == ["315"]


# -- MODE ----------------------------------------------------------------------------


def test_mode_op_on_unknown_nick_is_401_and_on_outsider_441(connect: Connect) -> None:
    chanop = connect("chanop")
    chanop.join("#chan")
    connect("unrelated").join("#unrelated")
    chanop.send("MODE #chan +o nobody")
    assert _numerics(_sync(chanop)) == ["401", "PONG"]
    chanop.send("MODE #chan +o unrelated")
    assert _numerics(_sync(chanop)) == ["441", "PONG"]


@pytest.mark.parametrize(
    "line", ["CAP LS ²", "CAP LS ٣٠٢", "MODE #a +l ²", "MODE #a +l ٣", "MODE #a +l 1²"]
)
def test_unicode_digits_never_cause_a_traceback(
    server: ServerProcess, connect: Connect, line: str
) -> None:
    a = connect("alice")
    a.join("#a")
    a.send(line)
    replies = _sync(a)
    assert "400" not in _numerics(replies)
    if line.startswith("MODE"):
        assert _numerics(replies) == ["696", "PONG"]
    else:
        assert any(m.command == "CAP" and m.params[1] == "LS" for m in replies)
        a.send("CAP LIST")
        assert "cap-notify" not in a.expect("CAP").params[-1]  # not taken as 302
    _no_handler_failures(server)


# -- INFO, LUSERS ----------------------------------------------------------------------


def test_info_lines_then_end(connect: Connect) -> None:
    a = connect("nick")
    a.send("INFO")
    rows = a.collect_until("374")
    assert len(rows) > 1 and set(_numerics(rows[:-1])) == {"371"}
    assert all(m.params[0] == "nick" and len(m.params) == 2 for m in rows)
    a.send("INFO distchat.local")
    a.collect_until("374")
    a.send("INFO nick")  # the server a user is on: this one
    a.collect_until("374")
    a.send("INFO invalid.server.example")
    assert a.expect("402").params[1] == "invalid.server.example"


def _lusers(client: RawClient) -> dict[str, Message]:
    client.send("LUSERS")
    rows = _sync(client)[:-1]
    by_numeric = {m.command: m for m in rows}
    assert len(by_numeric) == len(rows), "a numeric came twice"
    return by_numeric


def test_lusers_counts_and_maximum(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory("--oper", "root:hunter2")
    bar = RawClient(srv.host, srv.port)
    bar.register("bar")
    first = _lusers(bar)
    assert {"251", "255", "265", "266"} <= set(first)
    assert not {"252", "253", "254"} & set(first)  # sent only when not zero
    assert first["265"].params[1:3] == ["1", "1"] and first["266"].params[1:3] == ["1", "1"]

    qux = RawClient(srv.host, srv.port)
    qux.register("qux")
    lurker = RawClient(srv.host, srv.port)
    lurker.send("NICK lurker")
    _sync(lurker)
    bar.join("#room")
    bar.send("OPER root hunter2")
    bar.expect("381")
    counts = _lusers(bar)
    assert counts["252"].params[1] == "1"
    assert counts["253"].params[1] == "1"
    assert counts["254"].params[1] == "1"
    assert counts["266"].params[1:3] == ["2", "2"]

    qux.send("QUIT")
    assert qux.closed()
    after = _lusers(bar)
    assert after["265"].params[1:3] == ["1", "2"]  # one now, two at most
    assert after["266"].params[1:3] == ["1", "2"]
    assert "1 clients" in after["255"].params[-1]


# -- WHOWAS --------------------------------------------------------------------------


def test_whowas_after_quit_and_nick_change(connect: Connect) -> None:
    nick1 = connect("nick1")
    nick2 = connect("nick2")
    nick2.send("QUIT :bye")
    assert nick2.closed()
    again = connect()
    again.send("NICK nick2")
    again.send("USER ident3 0 * :Realname")
    again.expect("001")
    again.send("NICK renamed")
    again.expect("NICK")

    nick1.send("WHOWAS nick2")
    rows = nick1.collect_until("369")
    assert _numerics(rows) == ["314", "312", "314", "312", "369"]
    assert rows[0].params[1:] == ["nick2", "~ident3", "127.0.0.1", "*", "Realname"]
    assert rows[2].params[1:3] == ["nick2", "~nick2"]
    assert rows[1].params[2] == "distchat.local"
    assert rows[-1].params[1] == "nick2"

    nick1.send("WHOWAS nick2 1")
    assert _numerics(nick1.collect_until("369")) == ["314", "312", "369"]
    for count in ("0", "-1", "²"):
        nick1.send(f"WHOWAS NICK2 {count}")
        assert _numerics(nick1.collect_until("369")).count("314") == 2


def test_whowas_unknown_and_missing_nick(connect: Connect) -> None:
    a = connect("nick1")
    a.send("WHOWAS nick2")
    rows = a.collect_until("369")
    assert _numerics(rows) == ["406", "369"]
    assert rows[0].params[1] == "nick2" and rows[1].params[1] == "nick2"
    a.send("WHOWAS")
    assert _numerics(_sync(a)) == ["431", "PONG"]


# -- bans ----------------------------------------------------------------------------


def test_ban_blocks_join_until_removed_case_insensitively(connect: Connect) -> None:
    chanop = connect("chanop")
    chanop.join("#chan")
    chanop.send("MODE #chan +b BAR!*@*")
    assert chanop.expect("MODE").params == ["#chan", "+b", "BAR!*@*"]
    bar = connect("Bar")
    bar.send("JOIN #chan")
    assert bar.expect("474").params[1] == "#chan"
    chanop.send("MODE #chan -b bar!*@*")
    assert chanop.expect("MODE").params == ["#chan", "-b", "BAR!*@*"]
    bar.send("JOIN #chan")
    bar.expect("JOIN")


def test_ban_masks_are_normalized_listed_and_deduplicated(connect: Connect) -> None:
    op = connect("op")
    op.join("#r")
    op.send("MODE #r +bbb evil ~x@bad.example host.example")
    change = op.expect("MODE")
    assert change.params == ["#r", "+bbb", "evil!*@*", "*!~x@bad.example", "*!*@host.example"]
    op.send("MODE #r +b Evil")  # already there: no change, no message
    op.send("MODE #r +b")
    rows = op.collect_until("368")
    bans = [m.params[2] for m in rows if m.command == "367"]
    assert bans == ["evil!*@*", "*!~x@bad.example", "*!*@host.example"]
    entry = rows[0]
    assert entry.params[3].startswith("op!") and entry.params[4].isdigit()
    op.send("MODE #r b")
    assert _numerics(op.collect_until("368")).count("367") == 3
    outsider = connect("outsider")
    outsider.send("MODE #r b")  # anyone may look at the list
    assert _numerics(outsider.collect_until("368")).count("367") == 3
    outsider.send("MODE #r +b someone")
    outsider.expect("482")


def test_banned_member_cannot_speak_on_any_path_unless_voiced(connect: Connect) -> None:
    op = connect("op", caps=["message-tags"])
    op.join("#r")
    troll = connect("troll", caps=["message-tags"])
    troll.join("#r")
    troll.send("PRIVMSG #r :before")
    op.expect("PRIVMSG", pattern="before")
    op.send("MODE #r +b troll*")
    troll.expect("MODE", pattern=r"\+b")
    troll.send("PRIVMSG #r :fast path")  # the parser-free path for room messages
    troll.expect("404")
    troll.send("@+draft/x=1 PRIVMSG #r :general path")
    troll.expect("404")
    troll.send("NOTICE #r :quiet")  # no error reply for NOTICE, and no delivery
    troll.send("NICK nottroll")
    troll.expect("NICK")
    troll.send("PRIVMSG #r :new name")  # the ban matched the old nick only
    op.expect("PRIVMSG", pattern="new name")
    troll.send("NICK troll2")
    troll.expect("NICK")
    troll.send("PRIVMSG #r :banned again")
    troll.expect("404")
    op.send("MODE #r +v troll2")
    troll.expect("MODE", pattern=r"\+v")
    troll.send("PRIVMSG #r :voiced")
    op.expect("PRIVMSG", pattern="voiced")
    said = [m.params[-1] for m in op.received if m.command in ("PRIVMSG", "NOTICE")]
    assert said == ["before", "new name", "voiced"]


def test_ban_list_is_capped(server_factory: Callable[..., ServerProcess]) -> None:
    srv = server_factory(flood_limit=False)
    op = RawClient(srv.host, srv.port)
    op.register("op")
    op.join("#r")
    for first in range(0, 100, 4):
        masks = " ".join(f"n{i}" for i in range(first, first + 4))
        op.send(f"MODE #r +bbbb {masks}")
    op.send("MODE #r +b one-too-many")
    full = op.expect("478")
    assert full.params[1:3] == ["#r", "b"]
    op.send("MODE #r b")
    assert _numerics(op.collect_until("368")).count("367") == 100
    op.send("MODE #r -b n0")
    op.send("MODE #r +b one-too-many")
    op.expect("MODE", pattern="one-too-many")


# -- OPER ----------------------------------------------------------------------------


def test_failed_opers_slow_the_address_down_across_reconnects(
    server_factory: Callable[..., ServerProcess],
) -> None:
    srv = server_factory("--oper", "root:hunter2")
    guesser = RawClient(srv.host, srv.port)
    guesser.register("guesser")
    for guess in ("a", "b", "c", "d"):  # three free failures, then a wait begins
        guesser.send(f"OPER root {guess}")
        guesser.expect("464")
    guesser.close()
    back = RawClient(srv.host, srv.port)
    back.register("back")
    back.send("OPER root hunter2")  # right, but not even checked while waiting
    assert _numerics(_sync(back)) == ["464", "PONG"]
    line = srv.wait_log("OPER failed from 127.0.0.1")
    assert "'guesser as root'" in line
    reports = [entry for entry in srv.log if "OPER failed" in entry]
    assert len(reports) == 1  # one line per address per 10 s, with a count later
