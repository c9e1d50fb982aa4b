"""Nodes dying and Redis restarting: users leave cleanly, clients lose nothing."""

from __future__ import annotations

import asyncio
import time

from chat_protocol.client import ClientConfig, Connected, IRCClient, Received, ServerAddress
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs, sees


def test_killed_node_users_quit_elsewhere_and_nicks_free(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#room")
    bob.join("#room")
    wait_for(lambda: in_room(alice, "#room", "bob"), what="bob in #room on a")
    cluster.nodes["b"].kill()
    started = time.monotonic()
    quit_msg = alice.expect("QUIT", timeout=10)
    assert quit_msg.nick == "bob"
    assert time.monotonic() - started < 8
    assert not in_room(alice, "#room", "bob")
    again = cluster.client("a")
    again.register("bob")  # the dead node's nick is free


def test_redis_restart_mid_conversation(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#r")
    bob.join("#r")
    wait_for(lambda: in_room(alice, "#r", "bob"), what="bob in #r on a")
    alice.send("PRIVMSG #r :before")
    assert privmsgs(bob, 1)[0][3] == "before"

    cluster.redis.stop()  # Redis goes away mid-conversation...
    for c in (alice, bob):
        c.expect("NOTICE", pattern="Cluster link lost", timeout=10)
    alice.send("PRIVMSG #r :lost?")  # refused clearly, and the node still answers
    assert alice.expect("FAIL").params[:2] == ["PRIVMSG", "CLUSTER_UNAVAILABLE"]
    alice.send("PING :still-here")
    alice.expect("PONG")
    cluster.redis.start()  # ...and comes back empty (no persistence)
    for c in (alice, bob):
        c.expect("NOTICE", pattern="Cluster link restored", timeout=15)
    for srv in cluster.nodes.values():
        wait_for(lambda srv=srv: sum("in sync" in line for line in srv.log) >= 2, what="resync")

    # both nodes re-registered their users, rooms and nicks: everything works again
    wait_for(lambda: in_room(alice, "#r", "alice", "bob"), what="#r rebuilt on a")
    wait_for(lambda: in_room(bob, "#r", "alice", "bob"), what="#r rebuilt on b")
    alice.send("PRIVMSG #r :after")
    assert privmsgs(bob, 1)[0][3] == "after"
    bob.send("PRIVMSG #r :reply")
    assert [t for *_, t in privmsgs(alice, 2)] == ["after", "reply"]
    taker = cluster.client("b")
    taker.send("NICK alice\r\nUSER x 0 * :x")
    taker.expect("433")


async def test_client_fails_over_to_another_node_and_misses_nothing(cluster: Cluster) -> None:
    a = cluster.node("a")
    b = cluster.node("b")
    alice = cluster.client("a", "alice")
    alice.join("#f")
    config = ClientConfig(
        servers=[ServerAddress(b.host, b.port), ServerAddress(a.host, a.port)],
        nick="carol",
        channels=["#f"],
        reconnect_min=0.2,
        reconnect_max=1.0,
        connect_timeout=5.0,
    )
    carol = IRCClient(config)
    runner = asyncio.create_task(carol.run())
    received: list[str] = []
    servers: list[ServerAddress] = []

    async def consume() -> None:
        async for event in carol.events():
            if isinstance(event, Connected):
                servers.append(event.server)
            elif isinstance(event, Received) and event.message.command == "PRIVMSG":
                received.append(event.message.tags.get("msgid", ""))

    consumer = asyncio.create_task(consume())
    try:
        await asyncio.to_thread(
            wait_for, lambda: in_room(alice, "#f", "carol"), 10.0, "carol in #f"
        )
        sent: list[str] = []

        async def say(start: int, count: int) -> None:
            for i in range(start, start + count):
                alice.send(f"PRIVMSG #f :m{i}")
                (msgid, *_) = (await asyncio.to_thread(privmsgs, alice, 1))[0]
                sent.append(msgid)
                await asyncio.sleep(0.02)

        await say(0, 10)
        b.kill()  # carol's node dies while alice keeps talking
        await say(10, 20)
        await asyncio.to_thread(
            wait_for, lambda: sees(alice, "carol") or sees(alice, "carol_"), 15.0, "carol back"
        )
        await say(30, 10)
        deadline = time.monotonic() + 15
        while set(received) < set(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert servers[0].port == b.port and servers[-1].port == a.port
        missing = [m for m in sent if m not in received]
        assert not missing, f"carol missed {len(missing)} of {len(sent)}"
        assert len(received) == len(set(received))  # and got none twice
    finally:
        await carol.close()
        consumer.cancel()
        runner.cancel()
        await asyncio.gather(runner, consumer, return_exceptions=True)


def test_clean_shutdown_frees_nicks_at_once(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#s")
    bob.join("#s")
    wait_for(lambda: in_room(alice, "#s", "bob"), what="bob in #s on a")
    cluster.nodes["b"].stop()  # SIGTERM: the node leaves instead of timing out
    assert alice.expect("QUIT", timeout=3).param(0) == "Server shutting down"
    assert not sees(alice, "bob")
    cluster.client("a").register("bob")
