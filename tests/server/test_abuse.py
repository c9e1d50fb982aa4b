"""One client's garbage, flood or slowness must hurt only that client."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from pathlib import Path

from tests.support.rawclient import RawClient


def _chat_still_works(a: RawClient, b: RawClient, text: str) -> None:
    a.send(f"PRIVMSG #room :{text}")
    assert b.expect("PRIVMSG", pattern=text, timeout=10).params[-1] == text


def _pair(connect) -> tuple[RawClient, RawClient]:
    a = connect("alice")
    b = connect("bob")
    a.join("#room")
    b.join("#room")
    return a, b


def test_garbage_bytes_do_not_hurt_anyone(connect) -> None:
    a, b = _pair(connect)
    rng = random.Random(1234)
    junk = connect()
    for _ in range(50):
        junk.sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) + b"\r\n")
    for line in (
        b"@only=tags",
        b":onlysource",
        b"   ",
        b"@",
        b":",
        b"\xff\xfe PRIVMSG",
        b"\x00\x01\x02",
    ):
        junk.sock.sendall(line + b"\r\n")
    _chat_still_works(a, b, "after garbage")
    evil = connect("evil")
    evil.send(b"PRIVMSG #room :bad \xff\xfe bytes\r\n")
    evil.expect("FAIL", pattern="INVALID_UTF8")
    _chat_still_works(a, b, "after invalid utf8")


def test_invalid_utf8_is_replaced_not_fatal(connect) -> None:
    a, b = _pair(connect)
    a.send(b"PRIVMSG #room :caf\xe9 ok\r\n")
    got = b.expect("PRIVMSG")
    assert got.params[-1] == "caf\ufffd ok"


def test_100kb_line_gets_417_and_connection_lives(connect) -> None:
    a, b = _pair(connect)
    a.sock.sendall(b"PRIVMSG #room :" + b"A" * 100_000 + b"\r\n")
    a.expect("417")
    _chat_still_works(a, b, "after the huge line")
    huge_tags = "@" + ";".join(f"+k{i}=" + "v" * 50 for i in range(200))
    a.send(f"{huge_tags} PRIVMSG #room :tags too big")
    a.expect("417")
    a.send("@+big=" + "v" * 5000 + " PRIVMSG #room :over 4094 bytes of client tags")
    a.expect("417")
    a.send("@+ok=" + "v" * 3000 + " PRIVMSG #room :under the client tag limit")
    assert b.expect("PRIVMSG").params[-1] == "under the client tag limit"


def test_flooder_is_throttled_or_cut_while_others_chat(connect) -> None:
    a, b = _pair(connect)
    flooder = connect("flooder")
    flooder.join("#room")
    payload = b"".join(b"PRIVMSG #room :flood %d\r\n" % i for i in range(3000))
    flooder.sock.settimeout(5)
    with contextlib.suppress(OSError):  # cut off mid-send is one acceptable outcome
        flooder.sock.sendall(payload)
    for i in range(5):
        _chat_still_works(b, a, f"calm {i}")
    # The flooder's lines were not all delivered at once: the flood limit held them.
    flood_seen = sum(1 for m in a.received if m.command == "PRIVMSG" and "flood" in m.params[-1])
    assert flood_seen < 3000


def test_client_that_never_reads_is_disconnected_with_sendq(server_factory) -> None:
    srv = server_factory("--sendq", "65536", "--no-flood-limit")
    witness = RawClient(srv.host, srv.port)
    witness.register("witness")
    witness.join("#room")
    sleeper = socket.create_connection((srv.host, srv.port))
    sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sleeper.sendall(b"NICK sleeper\r\nUSER s 0 * :s\r\nJOIN #room\r\n")
    witness.expect("JOIN", pattern="sleeper")
    talker = RawClient(srv.host, srv.port)
    talker.register("talker")
    talker.join("#room")
    text = "x" * 400
    quit_seen = None
    deadline = time.monotonic() + 30
    sent = 0
    while quit_seen is None and time.monotonic() < deadline and sent < 20000:
        talker.send("".join(f"PRIVMSG #room :{sent + i} {text}\r\n" for i in range(50)))
        sent += 50
        with contextlib.suppress(TimeoutError):
            quit_seen = witness.expect(
                lambda m: m.command == "QUIT" and m.nick == "sleeper", timeout=0.05
            )
    assert quit_seen is not None, "the non-reading client was never disconnected"
    assert "SendQ exceeded" in quit_seen.params[-1]
    witness_rss = _rss_kib(srv.proc.pid)
    assert witness_rss < 300_000, f"server RSS grew to {witness_rss} KiB"
    talker.send("PRIVMSG #room :still fine")
    witness.expect("PRIVMSG", pattern="still fine", timeout=10)
    sleeper.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_connections_per_address_limit(server_factory, tmp_path: Path) -> None:
    conf = tmp_path / "server.toml"
    conf.write_text("[server]\nmax_per_address = 3\n")
    srv = server_factory("--config", str(conf))
    clients = [RawClient(srv.host, srv.port) for _ in range(3)]
    for i, c in enumerate(clients):
        c.register(f"u{i}")
    extra = RawClient(srv.host, srv.port)
    extra.expect("ERROR", pattern="Too many connections")
    clients[0].close()
    # the slot frees once the server has seen the close
    deadline = time.monotonic() + 5
    while True:
        again = RawClient(srv.host, srv.port)
        try:
            again.register("late")
            break
        except (ConnectionError, TimeoutError):
            assert time.monotonic() < deadline
