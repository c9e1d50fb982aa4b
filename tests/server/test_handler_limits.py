"""Bounded work in handlers, in-process: masks, WHO limits and cost, the ban check and its
cache, WHOWAS memory, the OPER failure throttle, and the command table."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from chat_protocol.message import Message
from chat_server.commands import COMMANDS
from chat_server.config import ServerConfig
from chat_server.handlers import queries
from chat_server.masks import compile_mask, matches, normalize_ban_mask
from chat_server.model import MAX_BANS, Channel, User
from chat_server.server import Server
from chat_server.throttle import FailureThrottle
from chat_server.whowas import NickHistory

# -- masks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "text", "expected"),
    [
        ("*", "", True),
        ("coolni*", "coolNick", True),
        ("COOL?ick", "coolnick", True),
        ("*!*@127.*", "bob!~bob@127.0.0.1", True),
        ("*!*@127.*", "bob!~bob@10.0.0.1", False),
        ("[a]*", "alice", False),  # brackets are nick characters, not a class
        ("[a]*", "[a]lice", True),
        ("a.c", "abc", False),  # regex characters are literal
        ("a+", "aa", False),
        ("*a*b", "xxaxxbxb", True),
        ("a?", "a", False),
        ("ä*", "Äpfel", False),  # CASEMAPPING=ascii: only A-Z fold
    ],
)
def test_masks_follow_irc_globs(mask: str, text: str, expected: bool) -> None:
    assert matches(mask, text) is expected


def test_a_pathological_mask_takes_linear_time() -> None:
    mask = "*a" * 40 + "*b"
    text = "a" * 400
    started = time.perf_counter()
    assert not matches(mask, text)
    assert time.perf_counter() - started < 0.05


def test_compiled_masks_are_cached_in_a_small_lru() -> None:
    for i in range(1000):
        compile_mask(f"*distinct{i}*")
    info = compile_mask.cache_info()
    assert info.maxsize == 256 and info.currsize <= 256


@pytest.mark.parametrize(
    ("mask", "full"),
    [
        ("bob", "bob!*@*"),
        ("bob!~b", "bob!~b@*"),
        ("~b@host", "*!~b@host"),
        ("host.example", "*!*@host.example"),
        ("::1", "*!*@::1"),
        ("!@", "*!*@*"),
        ("a!b@c", "a!b@c"),
    ],
)
def test_ban_masks_are_normalized(mask: str, full: str) -> None:
    assert normalize_ban_mask(mask) == full


# -- the speaking check and its ban cache --------------------------------------------


def _user(nick: str, host: str = "127.0.0.1") -> User:
    user = User(None, host)
    user.username = "~" + nick[:9]
    user.set_nick(nick)
    user.registered = True
    return user


def test_can_speak_covers_n_m_voice_and_bans() -> None:
    chan = Channel("#r")
    member, voiced, outsider = _user("member"), _user("voiced"), _user("outsider")
    chan.add_member(member)
    chan.add_member(voiced, "+")
    assert chan.can_speak(member) and not chan.can_speak(outsider)  # +n
    chan.modes.discard("n")
    assert chan.can_speak(outsider)
    chan.modes.add("m")
    assert not chan.can_speak(member) and not chan.can_speak(outsider)
    assert chan.can_speak(voiced)
    chan.modes.discard("m")
    assert chan.add_ban("*!*@127.0.0.1", "op", 0.0)
    assert not chan.can_speak(member) and not chan.can_speak(outsider)
    assert chan.can_speak(voiced)  # voice outranks a ban
    assert chan.remove_ban("*!*@127.0.0.1") is not None
    assert chan.can_speak(member)


def test_ban_results_are_cached_per_identity_and_ban_list(monkeypatch) -> None:
    chan = Channel("#r")
    user = _user("troll")
    chan.add_member(user)
    assert chan.add_ban("troll!*@*", "op", 0.0)
    ban = next(iter(chan.bans.values()))
    calls = 0
    real_match = ban.pattern.match

    class CountingPattern:
        def match(self, text: str) -> object:
            nonlocal calls
            calls += 1
            return real_match(text)

    chan.bans[ban.mask] = ban._replace(pattern=CountingPattern())  # type: ignore[arg-type]
    for _ in range(1000):
        assert not chan.can_speak(user)
    assert calls == 1  # one match, then the cache
    user.set_nick("nice")  # a new identity is checked again
    assert chan.can_speak(user) and calls == 2
    assert chan.can_speak(user) and calls == 2
    chan.add_ban("nice!*@*", "op", 0.0)  # a changed list empties the cache
    assert not chan.can_speak(user)


def test_ban_cache_drops_people_who_left() -> None:
    chan = Channel("#r")
    chan.modes.discard("n")
    chan.add_ban("nobody!*@*", "op", 0.0)
    stayer = _user("stayer")
    chan.add_member(stayer)
    for i in range(1000):
        chan.can_speak(_user(f"passer{i}"))  # outsiders speaking once each
    assert len(chan.ban_checks) <= 2 * len(chan.members) + 64


def test_a_room_holds_at_most_max_bans() -> None:
    chan = Channel("#r")
    for i in range(MAX_BANS):
        assert chan.add_ban(f"n{i}!*@*", "op", 0.0)
    assert not chan.add_ban("extra!*@*", "op", 0.0)
    assert not chan.add_ban("N0!*@*", "op", 0.0)  # same mask, other case
    assert len(chan.bans) == MAX_BANS


# -- WHO: bounded scans and a higher cost ---------------------------------------------


class _Tokens:
    """Just enough of a Connection for the flood-token charge."""

    def __init__(self, tokens: float) -> None:
        self.tokens = tokens
        self.capture = None


@pytest.fixture
def crowded() -> Iterator[tuple[Server, User, list[str]]]:
    """A server (not listening) with 10,000 registered users and an asker whose
    replies are collected."""
    server = Server(ServerConfig())
    for i in range(10_000):
        user = _user(f"u{i:05d}")
        server.users[user.folded] = user
    asker = _user("asker")
    asker.conn = _Tokens(30.0)  # type: ignore[assignment]
    server.users[asker.folded] = asker
    sent: list[str] = []
    server.out.send_block = lambda user, text: sent.append(text)  # type: ignore[method-assign]
    yield server, asker, sent
    server.history.close()


def _who(server: Server, asker: User, sent: list[str], mask: str) -> list[str]:
    sent.clear()
    server.dispatch(asker, Message.parse(f"WHO {mask}"))
    return [line.split()[1] for line in "".join(sent).splitlines()]


def test_masked_who_scans_a_bounded_number_of_users(crowded) -> None:
    server, asker, sent = crowded
    started = time.perf_counter()
    assert _who(server, asker, sent, "*q*z*") == ["315"]
    assert time.perf_counter() - started < 0.1  # ~30 ms with fnmatch over everyone
    # The last user is past the scan limit: a mask does not find it, its nick does.
    assert _who(server, asker, sent, "u0999?") == ["315"]
    assert _who(server, asker, sent, "u09999") == ["352", "315"]
    assert _who(server, asker, sent, "u0000?") == ["352"] * 10 + ["315"]
    replies = _who(server, asker, sent, "*")
    assert replies.count("352") == queries.WHO_RESULT_LIMIT and replies[-1] == "315"


def test_masked_who_costs_more_flood_tokens(crowded) -> None:
    server, asker, sent = crowded
    conn = asker.conn
    assert conn is not None
    before = conn.tokens
    _who(server, asker, sent, "u00001")  # a nick: one lookup, the line's own token
    assert conn.tokens == before
    _who(server, asker, sent, "u0000*")
    assert conn.tokens == before - (queries.WHO_MASK_COST - 1)  # plus the line's one
    server.config.flood_limit = False
    _who(server, asker, sent, "u0000*")
    assert conn.tokens == before - (queries.WHO_MASK_COST - 1)


# -- WHOWAS memory -------------------------------------------------------------------


def test_nick_history_is_bounded_and_newest_first() -> None:
    history = NickHistory(capacity=3)
    for ident in ("a", "b", "c", "d"):
        user = _user("bob")
        user.username = ident
        history.remember(user, when=float(ord(ident)))
    assert [e.username for e in history.lookup("BOB")] == ["d", "c", "b"]
    assert [e.username for e in history.lookup("bob", 1)] == ["d"]
    history.remember(_user("other"))
    history.remember(_user("other"))
    assert len(history) == 3 and [e.username for e in history.lookup("bob")] == ["d"]
    history.remember(_user("third"))
    assert history.lookup("bob") == [] and history.lookup("nobody") == []


# -- the OPER failure throttle ----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_delays_grow_after_free_failures() -> None:
    clock = _Clock()
    throttle = FailureThrottle("OPER", free_failures=3, base_delay=2.0, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("1.2.3.4")
        throttle.failed("1.2.3.4")
    assert not throttle.blocked("1.2.3.4")
    throttle.failed("1.2.3.4")  # fourth: wait 2 s
    assert throttle.blocked("1.2.3.4") and not throttle.blocked("5.6.7.8")
    clock.now += 2.0
    assert not throttle.blocked("1.2.3.4")
    throttle.failed("1.2.3.4")  # fifth: wait 4 s
    assert throttle.delay("1.2.3.4") == 4.0
    for _ in range(30):
        clock.now += throttle.delay("1.2.3.4")
        throttle.failed("1.2.3.4")
    assert throttle.delay("1.2.3.4") == throttle.max_delay
    throttle.succeeded("1.2.3.4")
    assert not throttle.blocked("1.2.3.4") and throttle.delay("1.2.3.4") == 0.0


def test_throttle_forgets_old_failures_and_bounds_its_table() -> None:
    clock = _Clock()
    throttle = FailureThrottle("OPER", capacity=100, forget_after=60.0, clock=clock)
    for _ in range(4):
        throttle.failed("old")
    assert throttle.blocked("old")
    clock.now += 61.0
    throttle.failed("old")  # a fresh start: the first failure again
    assert not throttle.blocked("old")
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert "old" not in throttle._records  # the least recent address went first


def test_throttle_logs_at_most_one_line_per_address_per_interval(caplog) -> None:
    clock = _Clock()
    throttle = FailureThrottle("OPER", log_interval=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="chat_server"):
        for _ in range(50):
            throttle.failed("1.2.3.4", "eve as root")
        clock.now += 10.0
        throttle.failed("1.2.3.4")
        throttle.failed("5.6.7.8")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3
    assert "OPER failed from 1.2.3.4 ('eve as root'): 1 failure(s)" in lines[0]
    assert "50 failure(s) since last report" in lines[1]
    assert "5.6.7.8" in lines[2]


# -- the command table -----------------------------------------------------------------


def test_command_table_is_explicit_and_complete() -> None:
    expected = {
        "CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT", "AUTHENTICATE", "REGISTER",
        "PRIVMSG", "NOTICE",
        "TAGMSG", "CHATHISTORY", "SEARCH", "MARKREAD", "JOIN", "PART", "TOPIC", "NAMES",
        "LIST", "KICK", "INVITE", "MODE", "WHO", "WHOIS", "WHOWAS", "USERHOST", "ISON",
        "AWAY", "MONITOR", "SETNAME", "LUSERS", "MOTD", "VERSION", "TIME", "INFO", "OPER",
        "KILL",
    }  # fmt: skip
    assert set(COMMANDS) == expected
    for name, spec in COMMANDS.items():
        assert spec.name == name and callable(spec.func) and spec.cost >= 1
    assert COMMANDS["PING"].cost == 1 and COMMANDS["PRIVMSG"].cost == 1  # every line costs


def test_cluster_table_wraps_the_same_commands() -> None:
    from chat_server.cluster.handlers import cluster_commands

    table = cluster_commands()
    assert set(table) == set(COMMANDS)
    assert table["PRIVMSG"].func is not COMMANDS["PRIVMSG"].func
    assert table["WHO"] is COMMANDS["WHO"]
