"""Room batches across one I/O round, driven in-process so that the round is exact.

Over a socket a test cannot make two clients' lines land in the same round; here the
server's own round is played directly: several clients' lines handled, then one flush.
"""

from __future__ import annotations

import socket

import pytest

from chat_server.config import ServerConfig
from chat_server.connection import Connection
from chat_server.history import HistoryStore, parse_time
from chat_server.model import User
from chat_server.server import Server


class Round:
    """A server with socketpair clients; ``play`` is one loop round."""

    def __init__(self) -> None:
        self.server = Server(ServerConfig(flood_limit=False), HistoryStore(None))
        self.peers: dict[str, socket.socket] = {}
        self.conns: dict[str, Connection] = {}
        self.buf: dict[str, bytes] = {}

    def client(self, nick: str, *rooms: str, caps: str = "") -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        conn = Connection(ours, "127.0.0.1")
        conn.user = User(conn, "127.0.0.1")
        self.server.conns[conn.fd] = conn
        self.conns[nick] = conn
        self.peers[nick] = theirs
        self.buf[nick] = b""
        lines = [f"NICK {nick}".encode(), b"USER u 0 * :u"]
        if caps:
            lines[:0] = [f"CAP REQ :{caps}".encode()]
            lines.append(b"CAP END")
        lines += [f"JOIN {room}".encode() for room in rooms]
        self.play((nick, lines))

    def play(self, *reads: tuple[str, list[bytes]]) -> None:
        for nick, lines in reads:
            self.server._process(self.conns[nick], lines)
        self.server.flush_dirty()

    def privmsgs(self, nick: str) -> list[str]:
        """Texts of the PRIVMSGs ``nick`` got since the last call, in arrival order."""
        try:
            while chunk := self.peers[nick].recv(1 << 20):
                self.buf[nick] += chunk
        except BlockingIOError:
            pass
        *lines, self.buf[nick] = self.buf[nick].split(b"\r\n")
        return [
            line.decode().split(" :", 1)[1]
            for line in lines
            if b" PRIVMSG " in line.split(b" :", 1)[0]
        ]

    def close(self) -> None:
        self.server.history.close()
        for sock in self.peers.values():
            sock.close()
        for conn in self.conns.values():
            conn.sock.close()


@pytest.fixture
def rnd():
    r = Round()
    yield r
    r.close()


def test_member_of_two_rooms_gets_one_round_in_production_order(rnd: Round) -> None:
    rnd.client("both", "#a", "#b", caps="echo-message")
    rnd.client("xa", "#a")
    rnd.client("yb", "#b")
    rnd.client("onlya", "#a")
    for nick in rnd.conns:
        rnd.privmsgs(nick)
    rnd.play(
        ("xa", [b"PRIVMSG #a :1", b"PRIVMSG #a :2"]),
        ("yb", [b"PRIVMSG #b :3"]),
        ("xa", [b"PRIVMSG #a :4"]),
        ("both", [b"PRIVMSG #b :5", b"PRIVMSG #a :6"]),
        ("yb", [b"PRIVMSG #b :7"]),
    )
    assert rnd.privmsgs("both") == ["1", "2", "3", "4", "5", "6", "7"]
    assert rnd.privmsgs("onlya") == ["1", "2", "4", "6"]
    assert rnd.privmsgs("yb") == ["5"]  # no echo-message: not its own 3 and 7
    assert rnd.privmsgs("xa") == ["6"]


def test_join_and_replies_inside_a_round_keep_order(rnd: Round) -> None:
    rnd.client("a", "#r", caps="echo-message")
    rnd.client("b", "#r")
    for nick in rnd.conns:
        rnd.privmsgs(nick)
    rnd.client("c", "#s")
    rnd.play(
        ("a", [b"PRIVMSG #r :before"]),
        ("b", [b"JOIN #s", b"PRIVMSG #s :in s"]),
        ("c", [b"PRIVMSG #s :c in s"]),
        ("a", [b"PRIVMSG #r :after", b"PRIVMSG #nowhere :x"]),
    )
    assert rnd.privmsgs("b") == ["before", "c in s", "after"]
    assert rnd.privmsgs("a") == ["before", "after"]
    assert rnd.privmsgs("c") == ["in s"]


def _raw_privmsgs(rnd: Round, nick: str) -> list[bytes]:
    try:
        while chunk := rnd.peers[nick].recv(1 << 20):
            rnd.buf[nick] += chunk
    except BlockingIOError:
        pass
    *lines, rnd.buf[nick] = rnd.buf[nick].split(b"\r\n")
    return [line for line in lines if b" PRIVMSG " in line]


@pytest.mark.parametrize("bot", [False, True])
@pytest.mark.parametrize("run", [1, 3])
def test_fast_path_lines_match_the_general_formatter_in_every_tag_mode(
    rnd: Round, bot: bool, run: int
) -> None:
    modes = ["", "message-tags", "server-time", "message-tags server-time"]  # 0..3
    sender = "s{x}[y]"  # braces in a nick are legal, and must not upset formatting
    rnd.client(sender, "#r", caps="echo-message")
    for mode, caps in enumerate(modes):
        rnd.client(f"m{mode}", "#r", caps=caps)
    if bot:
        rnd.play((sender, [f"MODE {sender} +B".encode()]))
    for nick in rnd.conns:
        _raw_privmsgs(rnd, nick)
    texts = [f"line {i} {{not a field}}" for i in range(run)]
    rnd.play((sender, [f"PRIVMSG #r :{t}".encode() for t in texts]))
    got = {mode: _raw_privmsgs(rnd, f"m{mode}") for mode in range(4)}
    server = rnd.server
    source = rnd.conns[sender].user.source  # type: ignore[union-attr]
    for i, text in enumerate(texts):
        tag_text = got[3][i][1:].split(b" ", 1)[0].decode()
        tags = dict(t.split("=", 1) if "=" in t else (t, "") for t in tag_text.split(";"))
        assert ("bot" in tags) == bot
        body = f":{source} PRIVMSG #r :{text}\r\n"
        when = parse_time(tags["time"])
        for mode in range(4):
            want = server.delivery._format_variant(mode, body, None, tags["msgid"], when, bot)
            assert got[mode][i] + b"\r\n" == want, (mode, got[mode][i])


def test_the_fast_path_remembers_a_room_only_while_it_is_the_same_room(rnd: Round) -> None:
    rnd.client("a", "#r", caps="echo-message")
    rnd.client("b", "#r")
    for nick in rnd.conns:
        rnd.privmsgs(nick)
    rnd.play(("a", [b"PRIVMSG #r :one"]))  # a's connection now remembers #r
    assert rnd.privmsgs("b") == ["one"]
    rnd.play(("a", [b"PART #r", b"PRIVMSG #r :after part"]))  # +n: outsiders can't send
    assert rnd.privmsgs("b") == []
    rnd.play(("b", [b"PART #r"]), ("a", [b"JOIN #r"]), ("b", [b"JOIN #r"]))  # a new #r
    rnd.privmsgs("b")
    rnd.play(("a", [b"PRIVMSG #r :new room"]))
    assert rnd.privmsgs("b") == ["new room"]
    assert rnd.privmsgs("a")[-1] == "new room"


def test_a_remembered_room_still_checks_moderation(rnd: Round) -> None:
    rnd.client("op", "#m", caps="echo-message")
    rnd.client("v", "#m")
    rnd.play(("v", [b"PRIVMSG #m :hi"]))
    for nick in rnd.conns:
        rnd.privmsgs(nick)
    rnd.play(("op", [b"MODE #m +m"]), ("v", [b"PRIVMSG #m :muted"]))
    assert rnd.privmsgs("op") == []
    rnd.play(("op", [b"MODE #m +v v"]), ("v", [b"PRIVMSG #m :voiced"]))
    assert rnd.privmsgs("op") == ["voiced"]
