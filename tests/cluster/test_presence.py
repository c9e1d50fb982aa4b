"""Presence across nodes: MONITOR, away-notify and setname hear of remote users."""

from __future__ import annotations

from tests.cluster.conftest import CAPS, Cluster, wait_for
from tests.cluster.observe import in_room

PRESENCE = [*CAPS, "away-notify", "setname"]


def test_monitor_hears_of_users_on_other_nodes(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice")
    alice.send("MONITOR + bob,carol")
    assert alice.expect("731").params[-1] == "bob,carol"
    bob = cluster.client("b", "bob")
    assert alice.expect("730", timeout=10).params[-1] == "bob!~bob@127.0.0.1"
    bob.send("NICK robert")
    bob.expect("NICK")
    assert alice.expect("731", timeout=10).params[-1] == "bob"
    alice.send("MONITOR + robert")
    assert alice.expect("730").params[-1] == "robert!~bob@127.0.0.1"
    bob.send("QUIT :bye")
    assert alice.expect("731", timeout=10).params[-1] == "robert"
    cluster.client("b", "carol")
    assert alice.expect("730", timeout=10).params[-1] == "carol!~carol@127.0.0.1"
    cluster.nodes["b"].kill()  # carol's node dies: she goes offline once it is declared dead
    assert alice.expect("731", timeout=20).params[-1] == "carol"


def test_away_notify_and_setname_from_another_node(cluster: Cluster) -> None:
    cluster.node("a")
    cluster.node("b")
    alice = cluster.client("a", "alice", caps=PRESENCE)
    alice.join("#room")
    bob = cluster.client("b", "bob", caps=PRESENCE)
    wait_for(lambda: in_room(bob, "#room", "alice"), what="#room on b")
    bob.join("#room")
    alice.expect("JOIN", pattern="bob")
    bob.send("AWAY :lunch")
    away = alice.expect("AWAY", timeout=10)
    assert (away.nick, away.params) == ("bob", ["lunch"])
    bob.send("SETNAME :Robert Paulson")
    assert bob.expect("SETNAME").params == ["Robert Paulson"]
    assert alice.expect("SETNAME", timeout=10).params == ["Robert Paulson"]
    bob.send("AWAY")
    assert alice.expect("AWAY", timeout=10).params == []
    carol = cluster.client("b", "carol", caps=PRESENCE)
    carol.send("AWAY :elsewhere")
    carol.expect("306")
    carol.join("#room")
    joined = alice.expect("JOIN", pattern="carol", timeout=10)
    after = alice.expect(lambda m: True)  # the AWAY comes right after the JOIN
    assert (joined.nick, after.command, after.params) == ("carol", "AWAY", ["elsewhere"])
