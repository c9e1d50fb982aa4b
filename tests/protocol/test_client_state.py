"""Client bookkeeping without sockets: state from messages, reply matching, helpers."""

from __future__ import annotations

import asyncio

import pytest

from chat_protocol.client import fallback_nick
from chat_protocol.client_history import history_ref, merge_history
from chat_protocol.client_requests import PendingRequest, RequestTracker
from chat_protocol.client_state import SeenIds, SessionState, format_time, parse_time
from chat_protocol.client_types import ServerAddress, parse_servers
from chat_protocol.message import Message


def feed(state: SessionState, *lines: str) -> SessionState:
    for line in lines:
        state.apply(Message.parse(line))
    return state


def joined(nick: str = "me") -> SessionState:
    return feed(
        SessionState(nick),
        ":srv 005 me PREFIX=(ov)@+ CHANMODES=b,k,l,imnt BOT=B :are supported",
        f":{nick}!u@h JOIN #Room",
        ":srv 353 me = #Room :@+op!o@h +voice!v@h me!u@h",
        ":srv 366 me #Room :End of /NAMES list",
    )


@pytest.mark.parametrize(
    ("spec", "servers"),
    [
        ("127.0.0.1:6667", [ServerAddress("127.0.0.1", 6667)]),
        ("a:1, b:2", [ServerAddress("a", 1), ServerAddress("b", 2)]),
        ("irc.example.com", [ServerAddress("irc.example.com", 6667)]),
        ("[::1]:7000", [ServerAddress("::1", 7000)]),
    ],
)
def test_parse_servers(spec: str, servers: list[ServerAddress]) -> None:
    assert parse_servers(spec) == servers


@pytest.mark.parametrize("spec", ["", " , ", "a:1,,b:2", "a:x", "a:0", "a:70000", "a:", "::1:5"])
def test_parse_servers_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_servers(spec)


def test_server_address_str() -> None:
    assert str(ServerAddress("127.0.0.1", 6667)) == "127.0.0.1:6667"
    assert str(ServerAddress("::1", 6667)) == "[::1]:6667"


@pytest.mark.parametrize(
    ("attempt", "nick"), [(1, "dan_"), (2, "dan__"), (3, "dan1"), (4, "dan2"), (12, "dan10")]
)
def test_fallback_nick(attempt: int, nick: str) -> None:
    assert fallback_nick("dan", attempt) == nick


def test_fallback_nick_respects_length() -> None:
    assert fallback_nick("x" * 30, 1) == "x" * 29 + "_"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("abc-1", "msgid=abc-1"),
        ("2024-01-02T03:04:05.678Z", "timestamp=2024-01-02T03:04:05.678Z"),
        ("msgid=x", "msgid=x"),
        ("timestamp=2024-01-02T03:04:05.678Z", "timestamp=2024-01-02T03:04:05.678Z"),
    ],
)
def test_history_ref(ref: str, expected: str) -> None:
    assert history_ref(ref) == expected


def test_time_round_trip() -> None:
    when = parse_time("2024-01-02T03:04:05.678Z")
    assert when is not None and format_time(when) == "2024-01-02T03:04:05.678Z"
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_names_with_multi_prefix_and_userhost() -> None:
    state = joined()
    assert state.channels["#room"].members == {"op": "@+", "voice": "+", "me": ""}
    assert state.source == "me!u@h"


def test_modes_change_prefixes_and_channel_modes() -> None:
    state = feed(joined(), ":op!o@h MODE #room +v-o+kl me op secret 10", ":op!o@h MODE #room +n")
    chan = state.channels["#room"]
    assert chan.members == {"op": "+", "voice": "+", "me": "+"}
    assert chan.modes == "+kln"
    feed(state, ":srv 324 me #room +nt")
    assert chan.modes == "+nt"


def test_nick_part_kick_quit() -> None:
    state = feed(joined(), ":voice!v@h NICK :loud", ":op!o@h KICK #room loud :bye")
    assert state.channels["#room"].members == {"op": "@+", "me": ""}
    feed(state, ":op!o@h QUIT :gone", ":me!u@h NICK new")
    assert state.nick == "new" and state.source == "new!u@h"
    assert state.channels["#room"].members == {"new": ""}
    feed(state, ":new!u@h PART #ROOM")
    assert state.channels == {}


def test_topic() -> None:
    state = feed(joined(), ":srv 332 me #room :first", ":op!o@h TOPIC #room :second")
    assert state.channels["#room"].topic == "second"


def test_bots_from_tag_and_who() -> None:
    state = feed(
        joined(),
        "@bot :voice!v@h PRIVMSG #room :beep",
        ":srv 352 me #room o h srv op H@B :0 real",
    )
    assert state.channels["#room"].bots == {"voice", "op"}
    feed(state, ":voice!v@h PART #room")
    assert state.channels["#room"].bots == {"op"}


def test_history_batch_does_not_change_membership() -> None:
    state = feed(
        joined(),
        ":srv BATCH +h1 chathistory #room",
        "@batch=h1;time=2024-01-01T00:00:00.000Z :ghost!g@h JOIN #room",
        "@batch=h1;time=2024-01-01T00:00:01.000Z;msgid=m1 :ghost!g@h PRIVMSG #room :old",
        "@batch=h1;time=2024-01-01T00:00:02.000Z :op!o@h PART #room",
    )
    assert state.is_history(Message.parse("@batch=h1 :x PRIVMSG #room :y"))
    feed(state, ":srv BATCH -h1")
    assert state.channels["#room"].members == {"op": "@+", "voice": "+", "me": ""}
    assert state.last_seen["#room"].msgid == "m1"
    assert state.batches == {}


def test_last_seen_never_moves_back() -> None:
    state = feed(
        joined(),
        "@time=2024-01-01T00:00:05.000Z;msgid=new :op!o@h PRIVMSG #room :now",
        "@time=2024-01-01T00:00:01.000Z;msgid=old :op!o@h PRIVMSG #room :scrollback",
    )
    assert (state.last_seen["#room"].msgid, state.last_seen["#room"].time) == (
        "new",
        "2024-01-01T00:00:05.000Z",
    )
    state.reset_connection()
    assert state.channels == {} and state.last_seen["#room"].msgid == "new"


def test_isupport_tokens_and_casemapping() -> None:
    state = feed(
        SessionState("me"),
        ":srv 005 me NETWORK=a\\x20b CASEMAPPING=rfc1459 FOO :are supported",
        ":srv 005 me -FOO :are supported",
    )
    assert state.isupport == {"NETWORK": "a b", "CASEMAPPING": "rfc1459"}
    assert state.casefold("#Chan[]") == "#chan{}"


def test_cap_ack_and_del() -> None:
    state = feed(SessionState("me"), ":srv CAP me ACK :batch server-time", ":srv CAP me DEL :batch")
    assert state.caps == {"server-time"}


def test_seen_ids_are_bounded() -> None:
    seen = SeenIds(capacity=3)
    assert [seen.add(x) for x in "abca"] == [True, True, True, False]
    seen.add("d")
    seen.add("e")
    assert len(seen) == 3 and "b" not in seen and "a" in seen


def test_merge_history_dedupes_and_orders_by_time() -> None:
    def m(msgid: str, t: int) -> Message:
        return Message.parse(f"@msgid={msgid};time=2024-01-01T00:00:0{t}.000Z :a PRIVMSG #r :x")

    merged = merge_history([m("a", 1), m("b", 2), m("c", 2)], [m("c", 2), m("d", 3), m("a", 1)])
    assert [x.tags["msgid"] for x in merged] == ["a", "b", "c", "d"]


async def test_tracker_labeled_single_ack_and_batch() -> None:
    loop = asyncio.get_running_loop()
    state = SessionState("me")
    tracker = RequestTracker()
    single, ack, batched = (PendingRequest(loop.create_future()) for _ in range(3))
    tracker.labeled.update({"l1": single, "l2": ack, "l3": batched})

    def route(line: str) -> bool:
        msg = Message.parse(line)
        claimed = tracker.claim(msg, state.batch_chain(msg))
        state.apply(msg)
        return claimed

    assert route("@label=l1 :me!u@h PRIVMSG #r :hi")
    assert route("@label=l2 :srv ACK")
    assert route("@label=l3 :srv BATCH +o labeled-response")
    assert route("@batch=o :srv BATCH +i chathistory #r")
    assert route("@batch=i :a PRIVMSG #r :old")
    assert route(":srv BATCH -i")
    assert not batched.future.done()
    assert not route(":other PRIVMSG #r :unrelated")
    assert route(":srv BATCH -o")
    assert [m.command for m in single.future.result()] == ["PRIVMSG"]
    assert ack.future.result() == []
    assert [m.command for m in batched.future.result()] == ["BATCH", "PRIVMSG", "BATCH"]


def test_away_from_away_notify_who_and_our_own_replies() -> None:
    state = feed(joined(), ":op!o@h AWAY :lunch", ":srv 352 me #room v h srv voice G :0 real")
    assert state.away == {"op", "voice"} and state.is_away("OP")
    feed(state, ":op!o@h AWAY", ":srv 352 me #room v h srv voice H :0 real")
    assert state.away == set()
    feed(state, ":srv 306 me :You have been marked as being away")
    assert state.is_away("me")
    feed(state, ":srv 305 me :You are no longer marked as being away")
    assert not state.is_away("me")


def test_away_follows_nick_and_ends_with_quit_part_and_reconnect() -> None:
    state = feed(joined(), ":op!o@h AWAY :lunch", ":voice!v@h AWAY :brb", ":op!o@h NICK boss")
    assert state.away == {"boss", "voice"}
    feed(state, ":boss!o@h QUIT :bye", ":voice!v@h PART #room")
    assert state.away == set()
    feed(state, ":srv 306 me :away", ":x!x@h JOIN #room", ":x!x@h AWAY :gone")
    state.reset_connection()
    assert state.away == set()


def test_away_of_someone_we_share_no_channel_with_is_not_kept() -> None:
    state = feed(joined(), ":stranger!s@h AWAY :gone", ":srv 352 me * s h srv stranger G :0 r")
    assert state.away == set()
    feed(state, ":op!o@h AWAY :lunch", ":me!u@h PART #room")
    assert state.away == set()  # we left the only channel we shared


def test_a_replayed_bot_tag_marks_a_member_as_a_bot_but_joins_nobody() -> None:
    state = feed(
        joined(),
        ":srv BATCH +h1 chathistory #room",
        "@batch=h1;bot :voice!v@h PRIVMSG #room :beep",
        "@batch=h1;bot :ghost!g@h PRIVMSG #room :boo",
        ":srv BATCH -h1",
    )
    chan = state.channel("#ROOM")
    assert chan is not None and chan.bots == {"voice"} and "ghost" not in chan.members
