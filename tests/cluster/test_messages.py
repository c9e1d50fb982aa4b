"""Room and direct messages across nodes: exactly once, one order, same msgid and time."""

from __future__ import annotations

from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs, sees


def test_room_message_reaches_every_node_once_with_same_id_and_time(cluster: Cluster) -> None:
    for name in "abc":
        cluster.node(name)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    carol = cluster.client("c", "carol")
    for c in (alice, bob, carol):
        c.join("#room")
    wait_for(lambda: in_room(alice, "#room", "bob", "carol"), what="members on a")
    wait_for(lambda: in_room(carol, "#room", "alice", "bob"), what="members on c")
    alice.send("PRIVMSG #room :hello from a")
    got = [privmsgs(c, 1)[0] for c in (alice, bob, carol)]
    assert got[0] == got[1] == got[2]
    assert got[0][2:] == ("alice", "hello from a")
    # exactly once: a marker sent afterwards is the very next message everyone gets
    carol.send("PRIVMSG #room :marker")
    assert [privmsgs(c, 1)[0][3] for c in (alice, bob, carol)] == ["marker"] * 3


def test_two_senders_on_two_nodes_one_order_everywhere(cluster: Cluster) -> None:
    for name in "abc":
        cluster.node(name)
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    carol = cluster.client("c", "carol")
    for c in (alice, bob, carol):
        c.join("#race")
    for c in (alice, bob, carol):
        wait_for(lambda c=c: in_room(c, "#race", "alice", "bob", "carol"), what="members")
    n = 60
    alice.send("".join(f"PRIVMSG #race :a{i}\r\n" for i in range(n)).encode())
    bob.send("".join(f"PRIVMSG #race :b{i}\r\n" for i in range(n)).encode())
    seqs = [privmsgs(c, 2 * n) for c in (alice, bob, carol)]
    assert seqs[0] == seqs[1] == seqs[2]
    texts = [t for *_, t in seqs[0]]
    # each sender's own lines keep their order, and nothing is lost or doubled
    assert [t for t in texts if t[0] == "a"] == [f"a{i}" for i in range(n)]
    assert [t for t in texts if t[0] == "b"] == [f"b{i}" for i in range(n)]
    msgids = [m for m, *_ in seqs[0]]
    assert len(set(msgids)) == 2 * n
    times = [t for _, t, *_ in seqs[0]]
    assert times == sorted(times)


def test_direct_messages_and_notices_cross_nodes(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    wait_for(lambda: sees(alice, "bob"), what="bob visible on a")
    alice.send("PRIVMSG bob :psst")
    got = bob.expect("PRIVMSG")
    echo = alice.expect("PRIVMSG")
    assert got.param(1) == "psst" and got.nick == "alice"
    assert got.tags["msgid"] == echo.tags["msgid"] and got.tags["time"] == echo.tags["time"]
    bob.send("NOTICE alice :noted")
    assert alice.expect("NOTICE", pattern="noted").nick == "bob"
    alice.send("PRIVMSG nobody :hello?")
    alice.expect("401")


def test_tagmsg_crosses_nodes(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#t")
    bob.join("#t")
    wait_for(lambda: in_room(alice, "#t", "bob"), what="bob in #t on a")
    alice.send("@+typing=active TAGMSG #t")
    msg = bob.expect("TAGMSG")
    assert msg.tags["+typing"] == "active" and msg.nick == "alice"


def test_message_to_room_keeps_client_line_order(cluster: Cluster) -> None:
    """A room message reaches the room before the sender's next line is handled."""
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#o")
    bob.join("#o")
    wait_for(lambda: in_room(bob, "#o", "alice"), what="alice in #o on b")
    alice.send("PRIVMSG #o :bye all\r\nPART #o :gone")
    assert bob.expect(lambda m: m.command in ("PRIVMSG", "PART")).command == "PRIVMSG"
    assert bob.expect("PART").nick == "alice"
