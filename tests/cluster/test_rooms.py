"""Who creates a room, decided once for the whole cluster (issue 18, defect 7)."""

from __future__ import annotations

import redis

from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.observe import sees
from tests.support.rawclient import RawClient

ROUNDS = 25


def prefixes(client: RawClient, room: str) -> dict[str, str]:
    """NAMES of ``room`` as {nick: prefix}."""
    client.send(f"NAMES {room}")
    out: dict[str, str] = {}
    for m in client.collect_until("366"):
        if m.command == "353":
            for name in m.param(3).split():
                nick = name.lstrip("@+")
                out[nick] = name[: len(name) - len(nick)]
    return out


def own_prefix(replies: list[object], nick: str) -> str:
    """The prefix ``nick`` had in the NAMES of its own JOIN reply."""
    for m in replies:
        if getattr(m, "command", "") == "353":
            for name in m.param(3).split():  # type: ignore[attr-defined]
                if name.lstrip("@+") == nick:
                    return name[: len(name) - len(nick)]
    return "?"


def test_simultaneous_creation_on_two_nodes_gives_ops_to_exactly_one(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    wait_for(lambda: sees(alice, "bob") and sees(bob, "alice"), what="both nicks everywhere")
    both_ops = winners_alice = 0
    for i in range(ROUNDS):
        room = f"#fresh{i}"
        alice.send(f"JOIN {room}")  # both lines leave within microseconds of each other
        bob.send(f"JOIN {room}")
        mine = {
            "alice": own_prefix(alice.collect_until("366"), "alice"),
            "bob": own_prefix(bob.collect_until("366"), "bob"),
        }
        # Nobody is ever told they are op and then demoted: the JOIN reply is the truth.
        assert sorted(mine.values()) == ["", "@"], (room, mine)
        winners_alice += mine["alice"] == "@"

        def settled(room: str = room) -> dict[str, str] | None:
            seen_a, seen_b = prefixes(alice, room), prefixes(bob, room)
            full = set(seen_a) == set(seen_b) == {"alice", "bob"}
            return seen_a if full and seen_a == seen_b else None

        view = wait_for(settled, what=f"{room} the same on both nodes")
        assert isinstance(view, dict)
        both_ops += list(view.values()).count("@") != 1
        assert view == mine, (room, view, mine)
    assert both_ops == 0
    print(f"{ROUNDS} rounds: alice created {winners_alice}, bob {ROUNDS - winners_alice}")


def test_room_emptied_everywhere_is_created_again_with_ops(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.join("#again")
    wait_for(lambda: prefixes(bob, "#again") == {"alice": "@"}, what="#again seen on b")
    bob.join("#again")
    alice.send("PART #again")
    bob.send("PART #again")
    alice.expect("PART")
    bob.expect("PART")
    rc = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    wait_for(lambda: not rc.hexists("dc:roomsize", "#again"), what="no member counted")
    # and node b has applied alice's PART (events reach each node in their own time)
    wait_for(lambda: prefixes(bob, "#again") == {}, what="#again empty on b")
    assert own_prefix(bob.join("#again"), "bob") == "@"  # the room is new again: bob runs it
    # The reservation goes with the JOIN's publish.
    wait_for(lambda: not rc.keys("dc:creating:*"), what="the reservation gone")


def test_join_of_a_room_made_on_another_node_checks_its_key(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    bob = cluster.client("b", "bob")
    alice.send("JOIN #locked")
    alice.send("MODE #locked +k sesame")
    alice.expect("MODE")
    rc = redis.Redis.from_url(cluster.redis.url, decode_responses=True)
    wait_for(lambda: "sesame" in (rc.hget("dc:chans", "#locked") or ""), what="+k in redis")

    def keyed_on_b() -> bool:
        """Node b has applied the +k (a JOIN racing a MODE made on another node may
        still get in before it, as on any IRC network; not what this tests)."""
        modes = [m for m in bob.answer("MODE #locked") if m.command == "324"]
        return bool(modes) and "k" in modes[0].params[2]

    wait_for(keyed_on_b, what="node b has the key")
    bob.send("JOIN #locked")
    assert bob.expect(lambda m: m.command in ("475", "JOIN")).command == "475"
    bob.send("JOIN #locked sesame")
    bob.expect("JOIN")
    assert prefixes(bob, "#locked").get("bob") == ""


def test_join_of_a_client_with_extended_join_reaches_the_other_nodes(cluster: Cluster) -> None:
    """Such a JOIN goes out to lists of users, never to the room: it was not published,
    so the other nodes never saw the member (a failed-over client stayed invisible)."""
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    alice.join("#ext")
    carol = cluster.client("b", "carol", caps=["extended-join", "message-tags"])
    carol.join("#ext")
    wait_for(lambda: prefixes(alice, "#ext") == {"alice": "@", "carol": ""}, what="carol on a")
