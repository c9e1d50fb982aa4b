"""IRCClient against real servers: the distchat server, and a plain RFC server without caps.

Every wait is for a condition with a timeout. Raw clients block, so whatever they wait
for that needs our asyncio client to act runs in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chat_protocol import client as client_module
from chat_protocol.client import (
    ClientConfig,
    Connected,
    Disconnected,
    Event,
    IRCClient,
    NickFallback,
    NotConnected,
    Received,
    SearchFailed,
    SearchQuery,
    ServerAddress,
)
from chat_protocol.message import Message
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess, free_port

ALL_CAPS = {
    "cap-notify",
    "message-tags",
    "server-time",
    "echo-message",
    "batch",
    "labeled-response",
    "multi-prefix",
    "userhost-in-names",
    "draft/chathistory",
    "draft/read-marker",
    "soju.im/search",
    "account-notify",
    "account-tag",
    "extended-join",
    "away-notify",
}
RAW_CAPS = ["message-tags", "server-time", "echo-message", "batch"]

EventTest = Callable[[Event], bool]


class Recorder:
    """Consumes ``client.events()`` in the background and lets tests wait for events."""

    def __init__(self, client: IRCClient) -> None:
        self.client = client
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for event in self.client.events():
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()

    async def wait(self, test: EventTest, *, after: int = 0, timeout: float = 10.0) -> Event:
        """The first event from index ``after`` on that passes ``test``."""

        def found() -> Event | None:
            return next((e for e in self.events[after:] if test(e)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                tail = "\n".join(repr(e) for e in self.events[-15:])
                raise AssertionError(
                    f"no matching event in {timeout}s; last events:\n{tail}"
                ) from None
        event = found()
        assert event is not None
        return event

    def index(self, event: Event) -> int:
        return next(i for i, e in enumerate(self.events) if e is event)

    def texts(self, channel: str, *, after: int = 0) -> list[tuple[str, bool]]:
        """(text, history) of every PRIVMSG to ``channel`` received from ``after`` on."""
        return [
            (e.message.param(1), e.history)
            for e in self.events[after:]
            if isinstance(e, Received)
            and e.message.command == "PRIVMSG"
            and e.message.param(0) == channel
        ]


def privmsg_with(text: str, *, history: bool | None = None) -> EventTest:
    def test(e: Event) -> bool:
        return (
            isinstance(e, Received)
            and e.message.command == "PRIVMSG"
            and e.message.param(1) == text
            and (history is None or e.history is history)
        )

    return test


def own_join(channel: str, nick: str) -> EventTest:
    def test(e: Event) -> bool:
        return (
            isinstance(e, Received)
            and e.message.command == "JOIN"
            and e.message.param(0) == channel
            and e.message.nick == nick
        )

    return test


def connected(e: Event) -> bool:
    return isinstance(e, Connected)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a state condition (no event says it changed) until true or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def address(srv: ServerProcess) -> ServerAddress:
    return ServerAddress(srv.host, srv.port)


def config(*servers: ServerAddress, nick: str = "alice", **kw: object) -> ClientConfig:
    kw.setdefault("reconnect_min", 0.05)
    kw.setdefault("reconnect_max", 0.5)
    kw.setdefault("connect_timeout", 5.0)
    return ClientConfig(list(servers), nick, **kw)  # type: ignore[arg-type]


ClientMaker = Callable[..., tuple[IRCClient, Recorder]]


@pytest.fixture
async def start_client() -> AsyncIterator[ClientMaker]:
    """Start IRCClients (run() + a Recorder); all are closed at the end of the test."""
    running: list[tuple[IRCClient, asyncio.Task[None], Recorder]] = []

    def make(cfg: ClientConfig) -> tuple[IRCClient, Recorder]:
        client = IRCClient(cfg)
        recorder = Recorder(client)
        running.append((client, asyncio.create_task(client.run()), recorder))
        return client, recorder

    yield make
    for client, task, recorder in running:
        await client.close()
        await asyncio.wait_for(task, 10)
        await asyncio.wait_for(recorder.task, 10)


@pytest.fixture
def raw(server: ServerProcess) -> Iterator[Callable[..., RawClient]]:
    """Registered raw clients on ``server`` with tags, time and echo."""
    clients: list[RawClient] = []

    def make(nick: str, caps: list[str] | None = None) -> RawClient:
        c = RawClient(server.host, server.port)
        clients.append(c)
        c.register(nick, caps=RAW_CAPS if caps is None else caps)
        return c

    yield make
    for c in clients:
        c.close()


# -- registration --------------------------------------------------------------------------


async def test_connects_registers_and_enables_caps(
    server: ServerProcess, start_client: ClientMaker
) -> None:
    client, rec = start_client(config(address(server)))
    event = await rec.wait(connected)
    assert event == Connected(address(server), "alice")
    assert client.connected and client.nick == "alice" and client.server == address(server)
    assert client.caps == ALL_CAPS
    assert client.isupport["CHATHISTORY"] == "1000"
    assert client.isupport["CASEMAPPING"] == "ascii"
    assert client.isupport["BOT"] == "B"


async def test_nick_in_use_falls_back(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    raw("alice")
    first, rec1 = start_client(config(address(server)))
    assert await rec1.wait(lambda e: isinstance(e, NickFallback)) == NickFallback("alice", "alice_")
    assert await rec1.wait(connected) == Connected(address(server), "alice_")
    second, rec2 = start_client(config(address(server)))
    assert await rec2.wait(lambda e: isinstance(e, NickFallback)) == NickFallback(
        "alice", "alice__"
    )
    await rec2.wait(connected)
    assert (first.nick, second.nick) == ("alice_", "alice__")


async def test_bot_sets_mode_and_is_tagged(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    bob = raw("bob")
    bob.join("#room")
    client, rec = start_client(config(address(server), nick="helper", bot=True, channels=["room"]))
    await rec.wait(own_join("#room", "helper"))
    await rec.wait(
        lambda e: (
            isinstance(e, Received) and e.message.command == "MODE" and "+B" in e.message.params
        )
    )
    await client.privmsg("#room", "beep")
    seen = await asyncio.to_thread(bob.expect, "PRIVMSG", pattern="beep")
    assert "bot" in seen.tags


# -- channels, messages, history -----------------------------------------------------------


async def test_join_replays_history_as_a_batch(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    bob = raw("bob")
    bob.join("#room")
    for i in range(3):
        bob.send(f"PRIVMSG #room :old {i}")
        bob.expect("PRIVMSG", pattern=f"old {i}")  # echo: stored
    client, rec = start_client(config(address(server)))
    await rec.wait(connected)
    await client.join("room")  # the '#' is added
    await rec.wait(privmsg_with("old 2"))
    assert rec.texts("#room") == [("old 0", True), ("old 1", True), ("old 2", True)]
    frames = [e for e in rec.events if isinstance(e, Received) and e.message.command == "BATCH"]
    assert [f.message.param(0)[0] for f in frames] == ["+", "-"]
    assert all(f.history for f in frames) and frames[0].message.param(1) == "chathistory"
    await until(lambda: "#room" in client.channels and "bob" in client.channels["#room"].members)
    chan = client.channels["#room"]
    assert chan.members == {"bob": "@", "alice": ""}
    assert chan.last_msgid is not None and chan.last_time is not None
    bob.send("PRIVMSG #room :live")
    assert await rec.wait(privmsg_with("live", history=False))


async def test_privmsg_is_split_and_echoed(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    bob = raw("bob")
    bob.join("#room")
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    words = [f"wörd{i}" for i in range(300)]
    start = len(rec.events)
    await client.privmsg("#room", " ".join(words), tags={"+draft/reply": "x"})
    await rec.wait(
        lambda e: isinstance(e, Received) and e.message.param(1).endswith("wörd299"),
        after=start,
    )
    echoed = [e.message for e in rec.events[start:] if isinstance(e, Received)]
    assert len(echoed) > 1
    assert " ".join(m.param(1) for m in echoed).split() == words
    assert all("msgid" in m.tags and m.tags.get("+draft/reply") == "x" for m in echoed)
    got = await asyncio.to_thread(bob.collect_until, "PRIVMSG")
    assert got[-1].param(1) == echoed[0].param(1)


async def test_action_notice_and_typing(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    bob = raw("bob", caps=[*RAW_CAPS])
    bob.join("#room")
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    await client.tagmsg("#room", {"+typing": "active"})
    typing = await asyncio.to_thread(bob.expect, "TAGMSG")
    assert typing.tags["+typing"] == "active"
    await client.action("#room", "waves")
    action = await asyncio.to_thread(bob.expect, "PRIVMSG")
    assert action.param(1) == "\x01ACTION waves\x01"
    await client.notice("#room", "heads up")
    notice = await asyncio.to_thread(bob.expect, "NOTICE")
    assert notice.param(1) == "heads up"


async def test_part_leaves_and_forgets_channel(
    server: ServerProcess, start_client: ClientMaker
) -> None:
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    await until(lambda: "#room" in client.channels)
    await client.part("#room", "later")
    await rec.wait(lambda e: isinstance(e, Received) and e.message.command == "PART")
    assert "#room" not in client.channels


async def test_labeled_request_returns_its_reply_only_to_the_caller(
    server: ServerProcess, start_client: ClientMaker
) -> None:
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    reply = await client.request("PRIVMSG #room :labeled hello")
    assert [m.command for m in reply] == ["PRIVMSG"]
    assert reply[0].tags["label"] and reply[0].param(1) == "labeled hello"
    mark = len(rec.events)
    names = await client.request(Message("NAMES", ["#room"]))
    assert [m.command for m in names] == ["353", "366"]
    await client.privmsg("#room", "after")  # its echo comes after any stray NAMES reply
    await rec.wait(privmsg_with("after"), after=mark)
    later = [e.message for e in rec.events[mark:] if isinstance(e, Received)]
    assert [m.command for m in later] == ["PRIVMSG"]
    assert not any(isinstance(e, Received) and "label" in e.message.tags for e in rec.events)


async def test_history_latest_and_before(server: ServerProcess, start_client: ClientMaker) -> None:
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    for i in range(6):
        await client.privmsg("#room", f"m{i}")
    await rec.wait(privmsg_with("m5"))
    latest = await client.history_latest("#room", 3)
    assert [m.param(1) for m in latest] == ["m3", "m4", "m5"]
    older = await client.history_before("#room", latest[0].tags["msgid"], 10)
    assert [m.param(1) for m in older] == ["m0", "m1", "m2"]
    cutoff = latest[0].tags["time"]
    by_time = await client.history_before("#room", cutoff, 2)
    assert len(by_time) <= 2 and all(m.tags["time"] < cutoff for m in by_time)


async def test_history_targets_lists_rooms_and_direct_conversations(
    server: ServerProcess, start_client: ClientMaker, connect: Callable[..., RawClient]
) -> None:
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    bob = connect("bob")
    bob.send("PRIVMSG alice :hello from bob")
    await rec.wait(privmsg_with("hello from bob"))
    await client.privmsg("#room", "in the room")
    await rec.wait(privmsg_with("in the room"))
    since = datetime.now(UTC) - timedelta(days=1)
    found: dict[str, str] = {}
    for _ in range(50):  # history is written in batches a few ms after the echo
        found = dict(await client.history_targets(since))
        if len(found) == 2:
            break
        await asyncio.sleep(0.05)
    assert set(found) == {"bob", "#room"}
    assert all(stamp.endswith("Z") for stamp in found.values())
    assert await client.history_targets(since, since + timedelta(seconds=1)) == []


@pytest.mark.parametrize("labeled", [True, False], ids=["labeled", "fenced"])
async def test_search_and_the_lines_around_a_result(
    server: ServerProcess,
    start_client: ClientMaker,
    monkeypatch: pytest.MonkeyPatch,
    labeled: bool,
) -> None:
    """SEARCH answers with the matches (not also as events), matched by label or by a
    PING fence; CHATHISTORY AROUND and BETWEEN give the lines around one of them."""
    if not labeled:
        caps = tuple(c for c in client_module.WANTED_CAPS if c != "labeled-response")
        monkeypatch.setattr(client_module, "WANTED_CAPS", caps)
    client, rec = start_client(config(address(server), channels=["#fruit", "#veg"]))
    await rec.wait(own_join("#veg", "alice"))
    assert client.can_search and ("labeled-response" in client.caps) is labeled
    for i in range(20):
        await client.privmsg("#fruit", f"apple {i}" if i in (3, 12) else f"pear {i}")
    await client.privmsg("#veg", "apple tart")
    await rec.wait(privmsg_with("apple tart"))
    mark = len(rec.events)

    found = await client.search(SearchQuery("apple"))
    assert [m.param(1) for m in found] == ["apple 3", "apple 12", "apple tart"]
    assert all(m.tags["msgid"] and m.tags["time"] for m in found)
    here = await client.search(SearchQuery("APPLE", target="#fruit", limit=1))
    assert [m.param(1) for m in here] == ["apple 12"]
    assert await client.search(SearchQuery("durian")) == []
    with pytest.raises(SearchFailed, match="not allowed"):
        await client.search(SearchQuery("apple", target="#nowhere"))
    with pytest.raises(ValueError, match="nothing to search"):
        await client.search(SearchQuery("  "))

    around = await client.history_around("#fruit", found[0].tags["msgid"], 5)
    assert [m.param(1) for m in around] == ["pear 1", "pear 2", "apple 3", "pear 4", "pear 5"]
    between = await client.history_between(
        "#fruit", around[-1].tags["msgid"], found[1].tags["msgid"], 100
    )
    assert [m.param(1) for m in between] == [f"pear {i}" for i in range(6, 12)]
    after = await client.history_between("#fruit", found[1].tags["msgid"], None, 3)
    assert [m.param(1) for m in after] == ["pear 13", "pear 14", "pear 15"]
    await client.privmsg("#veg", "fence")  # everything before it has been delivered
    await rec.wait(privmsg_with("fence"), after=mark)
    later = [e.message for e in rec.events[mark:] if isinstance(e, Received)]
    assert [(m.command, m.param(1)) for m in later] == [("PRIVMSG", "fence")]


async def test_ping_measures_lag(server: ServerProcess, start_client: ClientMaker) -> None:
    client, rec = start_client(config(address(server), ping_interval=0.3))
    await rec.wait(connected)
    await until(lambda: client.lag is not None)
    assert client.lag is not None and 0 <= client.lag < 5
    assert not any(isinstance(e, Received) and e.message.command == "PONG" for e in rec.events)


# -- offline, close ------------------------------------------------------------------------


async def test_sending_while_offline_raises_not_connected() -> None:
    client = IRCClient(config(ServerAddress("127.0.0.1", free_port())))
    with pytest.raises(NotConnected):
        await client.privmsg("#room", "hello")
    with pytest.raises(NotConnected):
        await client.join("#room")
    await client.close()
    assert [e async for e in client.events()] == [Disconnected("bye", None)]


async def test_close_says_quit_and_ends_events(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    bob = raw("bob")
    bob.join("#room")
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    await client.close("gone fishing")
    quit_msg = await asyncio.to_thread(bob.expect, "QUIT")
    assert "gone fishing" in quit_msg.param(0)
    assert await rec.wait(lambda e: isinstance(e, Disconnected)) == Disconnected(
        "gone fishing", None
    )
    await asyncio.wait_for(rec.task, 5)  # events() ended
    assert not client.connected


# -- reconnects ----------------------------------------------------------------------------


async def test_reconnects_and_rejoins_after_server_restart(
    server: ServerProcess, start_client: ClientMaker
) -> None:
    client, rec = start_client(config(address(server), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    await asyncio.to_thread(server.restart)
    drop = await rec.wait(lambda e: isinstance(e, Disconnected))
    assert isinstance(drop, Disconnected) and drop.retry_in is not None
    again = await rec.wait(connected, after=rec.index(drop))
    await rec.wait(own_join("#room", "alice"), after=rec.index(again))
    await until(lambda: "#room" in client.channels)
    assert client.connected
    await client.privmsg("#room", "back")
    await rec.wait(privmsg_with("back", history=False))


async def test_gap_is_filled_after_reconnect_without_duplicates(
    tmp_path: Path, server_factory: Callable[..., ServerProcess], start_client: ClientMaker
) -> None:
    db = tmp_path / "shared-history.db"
    main = server_factory(history_db=db, flood_limit=False)
    client, rec = start_client(config(address(main), channels=["#room"]))
    await rec.wait(own_join("#room", "alice"))
    bob = RawClient(main.host, main.port)
    bob.register("bob", caps=RAW_CAPS)
    bob.join("#room")
    for i in range(2):
        bob.send(f"PRIVMSG #room :before {i}")
    await rec.wait(privmsg_with("before 1"))
    bob.close()

    # While alice is away (main is down), 60 messages land in the shared history
    # through another server; more than the 50 a JOIN replays.
    await asyncio.to_thread(main.stop)
    await rec.wait(lambda e: isinstance(e, Disconnected))
    other = server_factory(history_db=db, flood_limit=False)
    carol = RawClient(other.host, other.port)
    carol.register("carol", caps=RAW_CAPS)
    carol.join("#room")
    for i in range(60):
        carol.send(f"PRIVMSG #room :gap {i}")
    carol.expect("PRIVMSG", pattern="gap 59")
    carol.close()
    await asyncio.to_thread(other.stop)

    mark = len(rec.events)
    await asyncio.to_thread(main.start)
    back = await rec.wait(connected, after=mark)
    await rec.wait(privmsg_with("gap 59"), after=rec.index(back))
    await until(lambda: not client._rejoin.holds)  # the gap fill has been merged and emitted
    got = rec.texts("#room", after=rec.index(back))
    assert got == [(f"gap {i}", True) for i in range(60)]
    assert [t for t, _ in rec.texts("#room")].count("before 1") == 1

    await client.privmsg("#room", "live again")
    await rec.wait(privmsg_with("live again", history=False))


async def test_fails_over_to_the_next_server(
    server_factory: Callable[..., ServerProcess], start_client: ClientMaker
) -> None:
    first = server_factory()
    second = server_factory()
    client, rec = start_client(config(address(first), address(second), channels=["#room"]))
    assert await rec.wait(connected) == Connected(address(first), "alice")
    await asyncio.to_thread(first.stop)
    moved = await rec.wait(lambda e: isinstance(e, Connected) and e.server == address(second))
    await rec.wait(own_join("#room", "alice"), after=rec.index(moved))
    assert client.server == address(second)


async def test_skips_a_dead_server_at_start(
    server: ServerProcess, start_client: ClientMaker
) -> None:
    dead = ServerAddress("127.0.0.1", free_port())
    _client, rec = start_client(config(dead, address(server)))
    failed = await rec.wait(lambda e: isinstance(e, Disconnected))
    assert isinstance(failed, Disconnected) and str(dead) in failed.reason
    assert failed.retry_in == 0.0  # the next server is tried at once
    assert await rec.wait(connected) == Connected(address(server), "alice")


async def test_backs_off_when_every_server_is_down(start_client: ClientMaker) -> None:
    dead = ServerAddress("127.0.0.1", free_port())
    client, rec = start_client(config(dead, reconnect_min=0.05, reconnect_max=0.2))
    for _ in range(5):
        await rec.wait(lambda e: isinstance(e, Disconnected), after=len(rec.events))
    delays = [e.retry_in for e in rec.events if isinstance(e, Disconnected)]
    assert all(d is not None and 0 < d <= 0.2 for d in delays)
    assert not client.connected


# -- a plain RFC server: no CAP, no tags ---------------------------------------------------


@pytest.fixture
def plain_server() -> Iterator[ServerAddress]:
    """jaraco's ``irc.server``: a minimal RFC 1459 server that knows nothing of IRCv3."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "irc.server", "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("irc.server did not start") from None
                time.sleep(0.02)
        yield ServerAddress("127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(10)


async def test_works_on_a_plain_irc_server(
    plain_server: ServerAddress, start_client: ClientMaker
) -> None:
    alice, rec_a = start_client(config(plain_server, channels=["#room"]))
    await rec_a.wait(own_join("#room", "alice"))
    assert alice.caps == set()
    bob, rec_b = start_client(config(plain_server, nick="alice", channels=["#room"]))
    await rec_b.wait(lambda e: isinstance(e, NickFallback))
    await rec_b.wait(own_join("#room", "alice_"))
    await bob.privmsg("#room", "hello plain irc", tags={"+typing": "done"})
    local = await rec_b.wait(privmsg_with("hello plain irc"))  # local echo: no echo-message
    assert isinstance(local, Received) and local.message.tags == {}
    heard = await rec_a.wait(privmsg_with("hello plain irc"))
    assert isinstance(heard, Received) and heard.message.nick == "alice_"
    assert await bob.history_latest("#room") == []
    await bob.tagmsg("#room", {"+typing": "active"})  # silently nothing without tags


async def test_away_changes_of_room_peers_arrive_live(
    server: ServerProcess, raw: Callable[..., RawClient], start_client: ClientMaker
) -> None:
    """With away-notify the member list's away marks follow AWAY without WHO polling."""
    client, rec = start_client(config(address(server), nick="alice", channels=["#r"]))
    await rec.wait(own_join("#r", "alice"))
    assert "away-notify" in client.caps
    bob = raw("bob")
    bob.join("#r")
    bob.send("AWAY :lunch")
    away = await rec.wait(lambda e: isinstance(e, Received) and e.message.command == "AWAY")
    assert isinstance(away, Received)
    assert away.message.nick == "bob" and away.message.params == ["lunch"]
    bob.send("AWAY")
    back = await rec.wait(
        lambda e: isinstance(e, Received) and e.message.command == "AWAY" and not e.message.params
    )
    assert isinstance(back, Received) and back.message.nick == "bob"
