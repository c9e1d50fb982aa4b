"""Who may read history, over IRC against real servers: a room's history is its current
members', also once it empties and after a restart or a crash; no CHATHISTORY without
the capability; SEARCH finds nothing the asker may not read. (The later holder of a
nick reading the earlier holder's DMs through CHATHISTORY is covered in
test_chathistory.py.)"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chat_protocol import Message
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

HIST = ["message-tags", "server-time", "batch", "draft/chathistory", "echo-message"]
SEARCHER = [*HIST, "soju.im/search"]
SPAN = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path, flood_limit=False) as server:
        yield server


@pytest.fixture
def client(srv: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    """Registered raw clients of ``srv`` (reconnecting after a restart works: each
    call opens a new connection)."""
    clients: list[RawClient] = []

    def make(nick: str, caps: list[str] | None = None) -> RawClient:
        c = RawClient(srv.host, srv.port)
        clients.append(c)
        c.register(nick, caps=HIST if caps is None else caps)
        return c

    yield make
    for c in clients:
        c.close()


def say(c: RawClient, target: str, *texts: str) -> list[str]:
    """Send ``texts`` and wait for each echo; their msgids."""
    ids = []
    for text in texts:
        c.send(f"PRIVMSG {target} :{text}")
        ids.append(c.expect("PRIVMSG", pattern=text).tags["msgid"])
    return ids


def texts_of(lines: list[Message]) -> list[str]:
    return [m.params[-1] for m in lines if m.command in ("PRIVMSG", "NOTICE")]


def batch_texts(lines: list[Message], kind: str) -> list[str]:
    """The texts inside the one ``kind`` batch of ``lines`` (which must hold one)."""
    starts = [m for m in lines if m.command == "BATCH" and m.params[0].startswith("+")]
    assert [m.params[1] for m in starts] == [kind], [str(m) for m in lines]
    ref = starts[0].params[0][1:]
    assert any(m.command == "BATCH" and m.params[0] == f"-{ref}" for m in lines)
    return [m.params[-1] for m in lines if m.tags.get("batch") == ref]


def is_fail(lines: list[Message], command: str, code: str) -> bool:
    fails = [m.params[:2] for m in lines if m.command == "FAIL"]
    return fails == [[command, code]] and not texts_of(lines)


def worker_pid(server_pid: int) -> int:
    """The pid of a server's history worker (its child running chat_server.history)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{server_pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"chat_server.history" in cmdline:
                    return int(pid)
        time.sleep(0.02)
    raise TimeoutError("no history worker")


def wait_dead(pid: int, timeout: float = 10.0) -> None:
    """Wait until ``pid`` has exited (gone, or a zombie nobody reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)
    raise TimeoutError(f"process {pid} still running")


def restart(srv: ServerProcess, how: str) -> None:
    """Bring the server down (``sigterm``: cleanly; ``sigkill``: a crash, after which
    its worker commits what it was given and exits) and start it again."""
    if how == "sigterm":
        assert srv.stop(signal.SIGTERM) == 0, srv.tail()
    else:
        assert srv.pid is not None
        worker = worker_pid(srv.pid)
        srv.kill()
        wait_dead(worker)
    srv.start()


# -- rooms --------------------------------------------------------------------------------


def test_a_stranger_reads_no_room_it_is_not_in(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    """Every CHATHISTORY subcommand on a room with members, on a room that emptied and
    on a room that never was: FAIL INVALID_TARGET, no batch, no message."""
    alice = client("alice")
    alice.join("#club")
    ids = say(alice, "#club", "one", "two", "three")
    zed = client("zed")
    queries = [
        "LATEST #club * 10",
        f"BEFORE #club msgid={ids[2]} 10",
        f"AFTER #club msgid={ids[0]} 10",
        f"AROUND #club msgid={ids[1]} 10",
        f"BETWEEN #club msgid={ids[0]} msgid={ids[2]} 10",
        "AFTER #club timestamp=2000-01-01T00:00:00.000Z 10",
    ]
    for query in queries:
        got = zed.answer("CHATHISTORY " + query)
        assert is_fail(got, "CHATHISTORY", "INVALID_TARGET"), (query, got)
        assert not [m for m in got if m.command == "BATCH"]
    alice.send("PART #club")
    alice.expect("PART")
    for query in [*queries, "LATEST #never * 10"]:
        got = zed.answer("CHATHISTORY " + query)
        assert is_fail(got, "CHATHISTORY", "INVALID_TARGET"), (query, got)
    got = zed.answer(f"CHATHISTORY TARGETS {SPAN} 10")
    assert batch_texts(got, "draft/chathistory-targets") == []
    restart(srv, "sigterm")  # after a restart every room is cold: still nobody's to read
    zed = client("zed")
    for query in queries:
        got = zed.answer("CHATHISTORY " + query)
        assert is_fail(got, "CHATHISTORY", "INVALID_TARGET"), (query, got)


@pytest.mark.parametrize("how", ["emptied", "sigterm", "sigkill"])
def test_a_keyed_room_keeps_its_key_and_its_history_from_strangers(
    srv: ServerProcess, client: Callable[..., RawClient], how: str
) -> None:
    """A +k room whose members all left, or that outlived a restart or a crash of the
    server, is still +k: a stranger without the key cannot join, so gets no replay and
    cannot read it; with the key one can, and sees the room as it was."""
    alice = client("alice")
    alice.join("#vault")
    alice.send("MODE #vault +k sesame")
    alice.expect("MODE", pattern=r"\+k")
    alice.send("TOPIC #vault :the vault")
    alice.expect("TOPIC")
    say(alice, "#vault", "the code is 1234", "do not tell")
    if how == "emptied":
        alice.send("PART #vault")
        alice.expect("PART")
    else:
        restart(srv, how)
    zed = client("zed")
    for join in ("JOIN #vault", "JOIN #vault wrongkey"):
        got = zed.answer(join)
        assert [m.command for m in got] == ["475"], (join, [str(m) for m in got])
    got = zed.answer("CHATHISTORY LATEST #vault * 10")
    assert is_fail(got, "CHATHISTORY", "INVALID_TARGET"), got
    got = zed.answer("NAMES #vault")
    assert not [m for m in got if m.command == "353"]  # nobody is in it

    bob = client("bob")
    got = bob.answer("JOIN #vault sesame")
    assert batch_texts(got, "chathistory") == ["the code is 1234", "do not tell"]
    assert [m.params[-1] for m in got if m.command == "332"] == ["the vault"]
    assert [m.params[-1] for m in got if m.command == "353"] == ["@bob"]
    got = bob.answer("MODE #vault")
    modes = next(m.params[2] for m in got if m.command == "324")
    assert "k" in modes, [str(m) for m in got]
    got = zed.answer("JOIN #vault")  # the room is back, still keyed
    assert [m.command for m in got] == ["475"], [str(m) for m in got]


@pytest.mark.parametrize("mode", ["+i", "+b zed!*@*"])
def test_an_emptied_room_keeps_invite_only_and_bans(
    srv: ServerProcess, client: Callable[..., RawClient], mode: str
) -> None:
    alice = client("alice")
    alice.join("#inner")
    alice.send(f"MODE #inner {mode}")
    alice.expect("MODE")
    say(alice, "#inner", "inner words")
    alice.send("QUIT :bye")
    assert alice.closed()
    zed = client("zed")
    got = zed.answer("JOIN #inner")
    assert [m.command for m in got] == ["473" if mode == "+i" else "474"], [str(m) for m in got]
    got = zed.answer("CHATHISTORY LATEST #inner * 10")
    assert is_fail(got, "CHATHISTORY", "INVALID_TARGET"), got


def test_a_public_room_that_emptied_is_readable_by_whoever_joins_it(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    """The counterpart: a room anyone may join keeps its history for whoever joins."""
    alice = client("alice")
    alice.join("#open")
    say(alice, "#open", "hello world")
    alice.send("PART #open")
    alice.expect("PART")
    zed = client("zed")
    got = zed.answer("JOIN #open")
    assert batch_texts(got, "chathistory") == ["hello world"]


def test_chathistory_needs_the_capability(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    alice = client("alice")
    alice.join("#caps")
    ids = say(alice, "#caps", "m0", "m1")
    plain = client("plain", caps=["batch", "server-time", "message-tags", "echo-message"])
    assert batch_texts(plain.answer("JOIN #caps"), "chathistory") == ["m0", "m1"]  # the replay
    for query in ("LATEST #caps * 10", f"BEFORE #caps msgid={ids[1]} 10", f"TARGETS {SPAN} 5"):
        got = plain.answer("CHATHISTORY " + query)
        assert [m.command for m in got] == ["421"], (query, [str(m) for m in got])
    bare = client("bare", caps=[])
    got = bare.answer("CHATHISTORY LATEST #caps * 10")
    assert [m.command for m in got] == ["421"], [str(m) for m in got]


# -- direct messages and search -------------------------------------------------------------


def test_search_finds_nothing_the_asker_may_not_read(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    """Rooms the asker is not in, other people's direct messages, and after a nick
    changes hands the earlier holder's: SEARCH finds none of them, whatever it asks."""
    alice = client("alice", SEARCHER)
    bob = client("bob", SEARCHER)
    carol = client("carol", SEARCHER)
    alice.join("#private")
    alice.send("MODE #private +k pw")
    alice.expect("MODE")
    bob.send("JOIN #private pw")
    bob.expect("366")
    say(alice, "#private", "swordfish in the room")
    say(alice, "bob", "swordfish between us")
    bob.expect("PRIVMSG", pattern="between us")
    say(bob, "alice", "swordfish back to you")
    alice.expect("PRIVMSG", pattern="back to you")
    carol.join("#public")
    say(carol, "#public", "swordfish in public")

    def search(c: RawClient, query: str) -> list[Message]:
        return c.answer(f"SEARCH {query}")

    for query, want in [
        ("text=swordfish", ["swordfish in public"]),
        ("text=swordfish;limit=100", ["swordfish in public"]),
        ("from=alice", []),
        ("from=bob;text=swordfish", []),
        ("text=room", []),
    ]:
        assert batch_texts(search(carol, query), "soju.im/search") == want, query
    for query in ("in=#private;text=swordfish", "in=#private", "in=#nowhere;text=x"):
        got = search(carol, query)
        assert is_fail(got, "SEARCH", "INVALID_PARAMS"), (query, got)
    for query in ("in=alice;text=swordfish", "in=bob;text=swordfish", "in=alice"):
        assert batch_texts(search(carol, query), "soju.im/search") == [], query

    # Bob reads his side; alice leaves and someone else takes her nick.
    got = search(bob, "text=swordfish")
    assert batch_texts(got, "soju.im/search") == [
        "swordfish in the room", "swordfish between us", "swordfish back to you",
    ]  # fmt: skip
    alice.send("QUIT :bye")
    assert alice.closed()
    bob.send("PART #private")
    bob.expect("PART")
    imposter = client("alice", SEARCHER)
    for query in ("text=swordfish", "in=bob;text=swordfish", "in=bob", "from=bob"):
        got = search(imposter, query)
        assert batch_texts(got, "soju.im/search") == [], query
    got = search(imposter, "in=#private;text=swordfish")
    assert is_fail(got, "SEARCH", "INVALID_PARAMS"), got
    # The emptied keyed room: nobody outside can search it, bob included.
    got = search(bob, "in=#private;text=swordfish")
    assert is_fail(got, "SEARCH", "INVALID_PARAMS"), got


def test_direct_messages_are_readable_by_their_two_parties_only(
    srv: ServerProcess, client: Callable[..., RawClient]
) -> None:
    """A third person can name either party: CHATHISTORY gives it its own (empty)
    conversation with that nick, never the two others' one."""
    alice = client("alice")
    bob = client("bob")
    say(alice, "bob", "just for bob")
    bob.expect("PRIVMSG", pattern="just for bob")
    carol = client("carol")
    for target in ("alice", "bob", "Alice", "BOB"):
        got = carol.answer(f"CHATHISTORY LATEST {target} * 10")
        assert batch_texts(got, "chathistory") == [], target
    got = carol.answer(f"CHATHISTORY TARGETS {SPAN} 10")
    assert batch_texts(got, "draft/chathistory-targets") == []
    got = bob.answer("CHATHISTORY LATEST alice * 10")
    assert batch_texts(got, "chathistory") == ["just for bob"]
