"""Room messages in shard streams (issue 18, defect 8): a node reads only the shards of
rooms it has members in, and its members still get every message once, in one order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from chat_protocol import Message
from chat_server.cluster.shards import stream_of
from chat_server.config import build_config
from tests.cluster.conftest import CAPS, Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs
from tests.cluster.proxy import CuttableProxy
from tests.cluster.test_operations import stats_c
from tests.support.rawclient import RawClient
from tests.support.servers import ServerProcess

SHARDS = build_config().cluster_shards
OPER = ("--oper", "root:hunter2")


def other_shard(room: str, prefix: str) -> str:
    """A room name starting with ``prefix`` whose messages go to another shard."""
    return next(
        name
        for i in range(1000)
        if stream_of(name := f"{prefix}{i}", SHARDS) != stream_of(room, SHARDS)
    )


def oper(client: RawClient) -> None:
    client.send("OPER root hunter2")
    client.expect("381")


def shard_reads(client: RawClient) -> tuple[set[str], dict[str, int]]:
    """From STATS c: the shard streams the node reads, and entries read per stream."""
    rows = stats_c(client)
    read = rows["shards"]["read"]
    shards = set() if read == "-" else {f"dc:m:{n}" for n in read.split(",")}
    return shards, {stream: int(n) for stream, n in rows["read"].items()}


def live(client: RawClient, room: str) -> list[Message]:
    """The PRIVMSGs to ``room`` that ``client`` got live (not in a history batch)."""
    return [
        m
        for m in client.received
        if m.command == "PRIVMSG" and m.param(0) == room and "batch" not in m.tags
    ]


def test_node_without_members_in_a_room_reads_none_of_its_messages(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b", *OPER)
    alice = cluster.client("a", "alice")
    carol = cluster.client("a", "carol")
    alice.join("#busy")
    carol.join("#busy")
    quiet = other_shard("#busy", "#quiet")
    bob = cluster.client("b", "bob")
    bob.join(quiet)
    oper(bob)
    for i in range(100):
        alice.send(f"PRIVMSG #busy :m{i}")
    privmsgs(carol, 100)
    carol.join(quiet)
    wait_for(lambda: in_room(bob, quiet, "carol"), what="carol in the quiet room on b")
    carol.send(f"PRIVMSG {quiet} :over here")
    assert privmsgs(bob, 1)[0][2:] == ("carol", "over here")

    busy = stream_of("#busy", SHARDS)
    shards, read = shard_reads(bob)
    assert shards == {stream_of(quiet, SHARDS)}
    assert busy not in read  # not one of the 100 messages was read by node b
    assert read[stream_of(quiet, SHARDS)] == 1
    assert read["dc:events"] > 0  # state events (joins, users) are read by every node

    # A member on b: the shard is read from then on; its past comes from the room's
    # history in Redis (the JOIN's replay), not from reading the shard.
    bob.send("JOIN #busy")
    bob.expect("BATCH")
    replayed = [m for m in bob.collect_until("BATCH") if m.command == "PRIVMSG"]
    assert [m.param(1) for m in replayed] == [f"m{i}" for i in range(50, 100)]
    alice.send("PRIVMSG #busy :now")
    bob.expect("PRIVMSG", pattern="now")
    shards, read = shard_reads(bob)
    assert busy in shards and read[busy] <= 3


def test_member_joining_on_another_node_gets_every_message_after_its_join_once(
    cluster: Cluster,
) -> None:
    cluster.node("a")
    cluster.node("b")
    carol = cluster.client("a", "carol")  # a member from the start: the reference order
    carol.join("#live")
    talker = cluster.client("a", "alice", caps=[])  # no echo: nothing to read back
    talker.join("#live")
    stop = threading.Event()

    def talk() -> None:
        i = 0
        while not stop.is_set():
            talker.send(f"PRIVMSG #live :n{i}")
            i += 1
            time.sleep(0.002)
        talker.send("PRIVMSG #live :end")

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    try:
        privmsgs(carol, 50)  # traffic is running
        bob = cluster.client("b", "bob")
        bob.send("JOIN #live")
        carol.expect(lambda m: m.command == "JOIN" and m.nick == "bob", timeout=10)
        privmsgs(carol, 200)  # and goes on after the JOIN
    finally:
        stop.set()
        thread.join(5)
    for client in (carol, bob):
        client.expect(lambda m: m.command == "PRIVMSG" and m.param(1) == "end", timeout=30)

    reference = [m.tags["msgid"] for m in live(carol, "#live")]
    joined_at = next(
        i for i, m in enumerate(carol.received) if m.command == "JOIN" and m.nick == "bob"
    )
    after_join = [m.tags["msgid"] for m in carol.received[joined_at:] if m.command == "PRIVMSG"]
    got = [m.tags["msgid"] for m in live(bob, "#live")]
    assert len(got) == len(set(got)), "a message reached bob twice"
    start = reference.index(got[0])
    assert got == reference[start:], "bob missed messages, or got them in another order"
    assert start <= reference.index(after_join[0])  # every message after his JOIN
    print(f"{len(got)} messages live on b; {len(after_join)} after the JOIN as a saw it")


def test_two_rooms_in_two_shards_keep_one_order_on_every_node(cluster: Cluster) -> None:
    for name in "abc":
        cluster.node(name)
    one = "#one"
    two = other_shard(one, "#two")
    x = cluster.client("a", "x")
    y = cluster.client("b", "y")
    z = cluster.client("c", "z")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    for c in (x, y, alice, z):
        c.join(one)
    for c in (x, y, bob):
        c.join(two)
    wait_for(lambda: in_room(y, one, "x", "alice", "z"), what="members of one on b")
    wait_for(lambda: in_room(x, two, "y", "bob"), what="members of two on a")
    wait_for(lambda: in_room(z, one, "x", "y", "alice"), what="members of one on c")
    n = 80
    alice.send("".join(f"PRIVMSG {one} :a{i}\r\n" for i in range(n)).encode())
    bob.send("".join(f"PRIVMSG {two} :b{i}\r\n" for i in range(n)).encode())
    seqs = [privmsgs(c, 2 * n) for c in (x, y)]
    assert seqs[0] == seqs[1]  # both rooms, one interleaving, on two nodes
    msgids = [m for m, *_ in seqs[0]]
    assert msgids == sorted(msgids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(msgids)) == 2 * n
    texts = [t for *_, t in seqs[0]]
    assert [t for t in texts if t[0] == "a"] == [f"a{i}" for i in range(n)]
    assert [t for t in texts if t[0] == "b"] == [f"b{i}" for i in range(n)]
    assert privmsgs(z, n) == [s for s in seqs[0] if s[3][0] == "a"]


def test_node_cut_off_gets_every_shard_message_after_its_resync(cluster: Cluster) -> None:
    proxy = CuttableProxy(cluster.redis.port)
    try:
        cluster.node("a")
        b = cluster.node("b", url=proxy.url)
        alice = cluster.client("a", "alice")
        bob = cluster.client("b", "bob")
        alice.join("#o")
        bob.join("#o")
        wait_for(lambda: in_room(bob, "#o", "alice"), what="alice in #o on b")
        alice.send("PRIVMSG #o :before")
        privmsgs(alice, 1)
        privmsgs(bob, 1)
        proxy.cut()
        bob.expect("NOTICE", pattern="Cluster link lost", timeout=10)
        for i in range(300):
            alice.send(f"PRIVMSG #o :cut {i}")
        sent = privmsgs(alice, 300)
        proxy.restore()
        bob.expect("NOTICE", pattern="Cluster link restored", timeout=15)
        got = privmsgs(bob, 300)
        assert got == sent  # all of them, in order, once
        alice.send("PRIVMSG #o :after")
        assert privmsgs(bob, 1)[0][3] == "after"
        assert not any("missed events" in line for line in b.log)
    finally:
        proxy.close()


def test_message_from_a_non_member_follows_the_shard_for_its_echo(cluster: Cluster) -> None:
    cluster.node("a", *OPER)
    cluster.node("b")
    bob = cluster.client("b", "bob")
    bob.join("#open")
    bob.send("MODE #open -n")  # outsiders may speak
    bob.expect("MODE")
    alice = cluster.client("a", "alice", caps=[*CAPS, "labeled-response"])
    wait_for(lambda: in_room(alice, "#open", "bob"), what="#open seen on a")

    def open_on_a() -> bool:
        alice.send("MODE #open")
        return "n" not in alice.expect("324").param(2)

    wait_for(open_on_a, what="-n of #open on a")
    oper(alice)
    alice.send("@label=x PRIVMSG #open :from outside")
    echo = alice.expect(lambda m: m.tags.get("label") == "x")
    # Its event came back through the stream, and the echo (with its label) answers it:
    # echo-message owes it to a sender outside the room too.
    assert (echo.command, echo.param(1)) == ("PRIVMSG", "from outside")
    assert bob.expect("PRIVMSG").param(1) == "from outside"
    room = stream_of("#open", SHARDS)
    assert room in shard_reads(alice)[0]
    # nothing in flight and no member here: the shard is dropped after a while
    wait_for(lambda: room not in shard_reads(alice)[0], 15, "the shard dropped on a")


def test_node_with_another_shard_count_is_refused(tmp_path: Path, cluster: Cluster) -> None:
    cluster.node("a")
    odd = ServerProcess(
        tmp_path, "--redis", cluster.redis.url, "--node-id", "odd", "--cluster-shards", "8"
    )
    try:
        odd.start()
        wait_for(lambda: odd.returncode is not None, 15, "the misconfigured node to exit")
        assert odd.returncode == 1
        errors = [line for line in odd.log if "error" in line.lower()]
        assert errors == [
            "chat-server: error: this cluster spreads room messages over 16 streams, this"
            " node over 8: give every node the same --cluster-shards"
        ]
    finally:
        odd.stop()
