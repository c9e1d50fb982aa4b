"""Shared history: join replay and CHATHISTORY answer the same on every node."""

from __future__ import annotations

from chat_protocol import Message
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import in_room, privmsgs, sees
from tests.support.rawclient import RawClient


def history(client: RawClient, *params: str) -> list[tuple[str, str, str, str]]:
    """A CHATHISTORY query's messages as (msgid, time, nick, text)."""
    client.send("CHATHISTORY " + " ".join(params))
    client.expect("BATCH")
    return [
        (m.tags["msgid"], m.tags["time"], m.nick or "", m.param(1))
        for m in client.collect_until("BATCH")
        if m.command == "PRIVMSG"
    ]


def replay(messages: list[Message]) -> list[tuple[str, str, str]]:
    return [
        (m.tags["msgid"], m.tags["time"], m.param(1)) for m in messages if m.command == "PRIVMSG"
    ]


def join_with_replay(client: RawClient, room: str) -> list[Message]:
    """JOIN ``room``; returns the messages of its history replay batch."""
    client.send(f"JOIN {room}")
    client.collect_until("366")
    client.expect("BATCH")
    return client.collect_until("BATCH")


def converse(cluster: Cluster) -> tuple[RawClient, RawClient, list[tuple[str, str, str, str]]]:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#h")
    bob.join("#h")
    wait_for(lambda: in_room(alice, "#h", "bob"), what="bob in #h on a")
    for i in range(6):
        (alice if i % 2 else bob).send(f"PRIVMSG #h :line {i}")
    seen = privmsgs(alice, 6)
    privmsgs(bob, 6)
    return alice, bob, seen


def test_chathistory_is_the_same_from_every_node(history_cluster: Cluster) -> None:
    alice, bob, seen = converse(history_cluster)
    assert history(alice, "LATEST", "#h", "*", "50") == seen
    assert history(bob, "LATEST", "#h", "*", "50") == seen
    third = seen[2][0]
    assert history(bob, "BEFORE", "#h", f"msgid={third}", "10") == seen[:2]
    assert history(alice, "AFTER", "#h", f"msgid={third}", "10") == seen[3:]
    assert history(bob, "AROUND", "#h", f"msgid={third}", "3") == seen[1:4]


def test_node_started_later_answers_from_shared_history(history_cluster: Cluster) -> None:
    _, _, seen = converse(history_cluster)
    history_cluster.node("c")  # started after the messages: loads them from Redis or PostgreSQL
    late = history_cluster.client("c", "late")
    join_with_replay(late, "#h")
    assert history(late, "LATEST", "#h", "*", "50") == seen
    assert history(late, "BEFORE", "#h", f"msgid={seen[-1][0]}", "2") == seen[3:5]


def test_join_replay_is_the_same_on_every_node(history_cluster: Cluster) -> None:
    _, _, seen = converse(history_cluster)
    history_cluster.node("c")
    texts = [(m, t, x) for m, t, _, x in seen]
    for node in "abc":
        late = history_cluster.client(node, f"new{node}")
        assert replay(join_with_replay(late, "#h")) == texts, node


def test_direct_message_history_from_either_side(history_cluster: Cluster) -> None:
    history_cluster.node("a")
    history_cluster.node("b")
    alice = history_cluster.client("a", "alice")
    bob = history_cluster.client("b", "bob")
    wait_for(lambda: sees(alice, "bob"), what="bob on a")
    alice.send("PRIVMSG bob :one")
    bob.expect("PRIVMSG")
    bob.send("PRIVMSG alice :two")
    alice.expect("PRIVMSG", pattern="two")
    from_a = history(alice, "LATEST", "bob", "*", "10")
    from_b = history(bob, "LATEST", "alice", "*", "10")
    assert [x for *_, x in from_a] == ["one", "two"]
    assert from_a == from_b
